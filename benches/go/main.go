// Command benches runs the Go twins of the gosync benchmarks: the same workloads, with the same
// amount of work per iteration, on Go's sync package (GOMAXPROCS=2).
//
// Usage: go run . [-quick] [FILTER]
//
// FILTER keeps the benchmarks whose id ("group/name", or "fairness/scenario") contains it.
// Output, one line per benchmark, parsed by `cargo xtask bench`:
//
//	GOBENCH <group> <name> median_ns=<float>
//	FAIRNESS <scenario> go samples=<n> p50_ns=<n> p99_ns=<n> max_ns=<n>
//
// Each GOBENCH median is the median over 20 samples of the time per iteration, as criterion
// reports it for the Rust benches.
package main

import (
	"flag"
	"fmt"
	"os"
	"runtime"
	"sort"
	"strings"
	"sync"
	"time"
)

const (
	opsPerIter = 2000                  // lock operations per iteration, summed over goroutines
	roundTrips = 100                   // Cond ping-pong round trips per iteration
	dones      = 5000                  // WaitGroup Done calls per worker per round
	hold       = time.Microsecond      // fairness: time the lock is held
	pause      = 50 * time.Microsecond // fairness: probe pause outside the lock
	samples    = 20
)

var (
	quick  = flag.Bool("quick", false, "tiny runs, to check that everything works")
	filter string
	sink   uint64
)

func wanted(id string) bool { return strings.Contains(id, filter) }

// measure prints the median time per iteration of run, which runs the workload iters times and
// returns how long that took.
func measure(group, name string, run func(iters uint64) time.Duration) {
	if !wanted(group + "/" + name) {
		return
	}
	target := 100 * time.Millisecond
	if *quick {
		target = time.Millisecond
	}
	iters := uint64(1)
	d := run(iters)
	for d < target/10 {
		iters *= 2
		d = run(iters)
	}
	iters = iters * uint64(target) / uint64(d+1)
	if iters == 0 {
		iters = 1
	}
	per := make([]float64, samples)
	for i := range per {
		per[i] = float64(run(iters).Nanoseconds()) / float64(iters)
	}
	sort.Float64s(per)
	median := (per[samples/2-1] + per[samples/2]) / 2
	fmt.Printf("GOBENCH %s %s median_ns=%.3f\n", group, name, median)
}

func share(total uint64, threads, i int) uint64 {
	n := total / uint64(threads)
	if uint64(i) < total%uint64(threads) {
		n++
	}
	return n
}

// parallel runs work(i) on n goroutines released together and times them until the last ends.
func parallel(n int, work func(i int)) time.Duration {
	var start, done sync.WaitGroup
	start.Add(1)
	done.Add(n)
	for i := 0; i < n; i++ {
		go func(i int) {
			start.Wait()
			work(i)
			done.Done()
		}(i)
	}
	t := time.Now()
	start.Done()
	done.Wait()
	return time.Since(t)
}

func busy(d time.Duration) {
	for t := time.Now(); time.Since(t) < d; {
	}
}

func mutexBenches() {
	measure("mutex_uncontended", "go", func(iters uint64) time.Duration {
		var mu sync.Mutex
		var count uint64
		t := time.Now()
		for i := uint64(0); i < iters; i++ {
			mu.Lock()
			count++
			mu.Unlock()
		}
		d := time.Since(t)
		sink += count
		return d
	})
	for _, c := range []struct {
		group   string
		threads int
	}{{"mutex_contended_2t", 2}, {"mutex_oversubscribed_8t", 8}} {
		threads := c.threads
		measure(c.group, "go", func(iters uint64) time.Duration {
			var mu sync.Mutex
			var count uint64
			d := parallel(threads, func(i int) {
				for j := iters * share(opsPerIter, threads, i); j > 0; j-- {
					mu.Lock()
					count++
					mu.Unlock()
				}
			})
			if count != iters*opsPerIter {
				panic("lost an increment")
			}
			return d
		})
	}
}

func rwmutexBenches() {
	measure("rwmutex_read_heavy", "go", func(iters uint64) time.Duration {
		var mu sync.RWMutex
		var count uint64
		return parallel(2, func(i int) {
			var seen uint64
			for j := uint64(0); j < iters*share(opsPerIter, 2, i); j++ {
				if j%100 == 0 {
					mu.Lock()
					count++
					mu.Unlock()
				} else {
					mu.RLock()
					seen += count
					mu.RUnlock()
				}
			}
			mu.Lock()
			sink += seen
			mu.Unlock()
		})
	})
}

func condBenches() {
	measure("cond_ping_pong", "go", func(iters uint64) time.Duration {
		var mu sync.Mutex
		c := sync.NewCond(&mu)
		turn := 0
		return parallel(2, func(me int) {
			for k := iters * roundTrips; k > 0; k-- {
				mu.Lock()
				for turn != me {
					c.Wait()
				}
				turn = 1 - me
				c.Signal()
				mu.Unlock()
			}
		})
	})
}

func onceBenches() {
	measure("once_done", "go_once", func(iters uint64) time.Duration {
		var once sync.Once
		f := func() { sink++ }
		once.Do(f)
		t := time.Now()
		for i := uint64(0); i < iters; i++ {
			once.Do(f)
		}
		return time.Since(t)
	})
}

func waitgroupBenches() {
	measure("waitgroup_rounds", "go", func(iters uint64) time.Duration {
		var wg sync.WaitGroup
		starts := []chan struct{}{make(chan struct{}, 1), make(chan struct{}, 1)}
		for w := 0; w < 2; w++ {
			go func(start chan struct{}) {
				for r := uint64(0); r < iters; r++ {
					<-start
					for k := 0; k < dones; k++ {
						wg.Done()
					}
				}
			}(starts[w])
		}
		var total time.Duration
		for r := uint64(0); r < iters; r++ {
			t := time.Now()
			wg.Add(2 * dones)
			starts[0] <- struct{}{}
			starts[1] <- struct{}{}
			wg.Wait()
			total += time.Since(t)
		}
		return total
	})
}

// fairness runs hogs goroutines calling hog in a loop against a probe that records the waits
// probe returns, for dur, and prints the wait distribution.
func fairness(scenario string, dur time.Duration, hogs int, hog func(), probe func() time.Duration) {
	if !wanted("fairness/" + scenario) {
		return
	}
	t0 := time.Now()
	var done sync.WaitGroup
	done.Add(hogs)
	for i := 0; i < hogs; i++ {
		go func() {
			for time.Since(t0) < dur {
				hog()
			}
			done.Done()
		}()
	}
	var waits []time.Duration
	for time.Since(t0) < dur {
		waits = append(waits, probe())
		busy(pause)
	}
	done.Wait()
	sort.Slice(waits, func(i, j int) bool { return waits[i] < waits[j] })
	at := func(q float64) time.Duration {
		i := int(float64(len(waits)) * q)
		if i >= len(waits) {
			i = len(waits) - 1
		}
		return waits[i]
	}
	fmt.Printf("FAIRNESS %s go samples=%d p50_ns=%d p99_ns=%d max_ns=%d\n",
		scenario, len(waits), at(0.5).Nanoseconds(), at(0.99).Nanoseconds(),
		waits[len(waits)-1].Nanoseconds())
}

func fairnessBenches() {
	dur := 2 * time.Second
	if *quick {
		dur = 5 * time.Millisecond
	}
	var mu sync.Mutex
	var count uint64
	fairness("mutex", dur, 1, func() {
		mu.Lock()
		busy(hold)
		count++
		mu.Unlock()
	}, func() time.Duration {
		t := time.Now()
		mu.Lock()
		w := time.Since(t)
		mu.Unlock()
		return w
	})
	var rw sync.RWMutex
	fairness("rwmutex_writer", dur, 2, func() {
		rw.RLock()
		busy(hold)
		rw.RUnlock()
	}, func() time.Duration {
		t := time.Now()
		rw.Lock()
		w := time.Since(t)
		count++
		rw.Unlock()
		return w
	})
}

func main() {
	flag.Parse()
	filter = flag.Arg(0)
	runtime.GOMAXPROCS(2)
	fmt.Fprintf(os.Stderr, "# %s, GOMAXPROCS=%d\n", runtime.Version(), runtime.GOMAXPROCS(0))
	mutexBenches()
	rwmutexBenches()
	condBenches()
	onceBenches()
	waitgroupBenches()
	fairnessBenches()
}
