package node

import "sync"

// group runs and counts the goroutines of one owner, so that the owner's
// Close can wait for every one of them. Once closed it starts nothing more:
// a goroutine that would start after the owner began to close is refused
// instead of leaking past the wait.
type group struct {
	mu     sync.Mutex
	closed bool
	wg     sync.WaitGroup
}

// Go runs f in a new goroutine of the group; it reports false, and runs
// nothing, once the group is closed.
func (g *group) Go(f func()) bool {
	if !g.enter() {
		return false
	}
	go func() {
		defer g.wg.Done()
		f()
	}()
	return true
}

// enter counts the calling goroutine (one the group did not start, such as
// a stream handler) as one of the group's until it calls leave; it reports
// false, counting nothing, once the group is closed.
func (g *group) enter() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return false
	}
	g.wg.Add(1)
	return true
}

// leave ends what enter began.
func (g *group) leave() { g.wg.Done() }

// closeAndWait refuses new goroutines and waits for the running ones.
func (g *group) closeAndWait() {
	g.mu.Lock()
	g.closed = true
	g.mu.Unlock()
	g.wg.Wait()
}
