package forecast

import (
	"runtime"
	"sync"
)

// spareCores holds one token per core beyond the first: a goroutine that
// takes one may run fitting work beside its caller. Shared by every fit in
// the process, so concurrent fits (forecast eval's workers, an agent
// refitting several series) do not multiply goroutines beyond the cores.
var spareCores = sync.OnceValue(func() chan struct{} {
	return make(chan struct{}, max(0, runtime.GOMAXPROCS(0)-1))
})

// inParallel calls do(i) for every i in [0, n), each exactly once: in the
// calling goroutine, and in as many helper goroutines as there are spare
// cores at the time (none when every core is busy). Work is taken in index
// order; it returns when every call has returned. Each do(i) must touch only
// its own results.
func inParallel(n int, do func(i int)) {
	var (
		mu   sync.Mutex
		next int
	)
	take := func() (int, bool) {
		mu.Lock()
		defer mu.Unlock()
		if next >= n {
			return 0, false
		}
		next++
		return next - 1, true
	}
	work := func() {
		for i, ok := take(); ok; i, ok = take() {
			do(i)
		}
	}
	spare := spareCores()
	var wg sync.WaitGroup
	for h := 1; h < n; h++ {
		select {
		case spare <- struct{}{}:
			wg.Add(1)
			go func() {
				defer func() { <-spare; wg.Done() }()
				work()
			}()
			continue
		default:
		}
		break
	}
	work()
	wg.Wait()
}
