//go:build !race

package node

import "time"

// closeBound is how long Close may take in TestCloseInFlight.
const closeBound = time.Second
