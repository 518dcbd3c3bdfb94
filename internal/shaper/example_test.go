package shaper_test

import (
	"bytes"
	"fmt"
	"io"

	"github.com/romap2p/romap2p/internal/shaper"
)

func ExampleNetwork() {
	nw := shaper.NewNetwork()
	nw.SetUplink("alice", 10e6)         // 10 MB/s out of alice, to everyone together
	nw.SetDownlink("bob", 4e6)          // 4 MB/s into bob, from everyone together
	nw.SetPairRate("alice", "bob", 2e6) // and 2 MB/s on the path alice -> bob

	var buf bytes.Buffer
	w := nw.Writer("alice", "bob", &buf)
	defer w.(io.Closer).Close() // releases a Write that waits for tokens

	if _, err := w.Write(make([]byte, 50000)); err != nil {
		fmt.Println(err)
	}
	fmt.Println(nw.PairBytes("alice", "bob"), nw.HostStats("alice").Uploaded, nw.HostStats("bob").Downloaded)
	// Output: 50000 50000 50000
}
