package node

import (
	"fmt"

	"github.com/libp2p/go-libp2p/core/network"
)

// sessionMemory accounts a session's large buffers (its relay ring and the
// symbols a download holds in memory) in the resource manager, in a span of
// romap2p's service scope: the host's limits bound what romap2p takes, and
// a download that meets them keeps its symbols on disk instead.
type sessionMemory struct {
	span network.ResourceScopeSpan // nil: no accounting
}

// newSessionMemory opens a span of the romap2p service scope of rm.
func newSessionMemory(rm network.ResourceManager) (*sessionMemory, error) {
	m := &sessionMemory{}
	if rm == nil {
		return m, nil
	}
	err := rm.ViewService(ServiceName, func(s network.ServiceScope) error {
		sp, err := s.BeginSpan()
		if err != nil {
			return err
		}
		m.span = sp
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("resource manager: %w", err)
	}
	return m, nil
}

// reserve takes n bytes; it fails when the limits would be exceeded.
// Buffers a session cannot work without take high priority; those it can
// do without (in-memory symbols, which can go to disk) low.
func (m *sessionMemory) reserve(n int, prio uint8) error {
	if m == nil || m.span == nil || n <= 0 {
		return nil
	}
	if err := m.span.ReserveMemory(n, prio); err != nil {
		return fmt.Errorf("resource manager refused %d bytes for the session: %w", n, err)
	}
	return nil
}

// release gives back n bytes taken with reserve.
func (m *sessionMemory) release(n int) {
	if m == nil || m.span == nil || n <= 0 {
		return
	}
	m.span.ReleaseMemory(n)
}

// done releases everything the span holds.
func (m *sessionMemory) done() {
	if m == nil || m.span == nil {
		return
	}
	m.span.Done()
}
