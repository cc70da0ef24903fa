package runtime

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

// Signals watches RUNTIME_SIGNALS_OS_SIGNALS (SIGTERM and SIGINT when the
// Config lists none) for the two orders a service takes from its operator:
// the first signal asks for a graceful shutdown, a second one during that
// shutdown asks to stop waiting at once.
type Signals struct {
	// Graceful is cancelled by the first signal, or when the parent is
	// done: the order to stop taking work and drain.
	Graceful context.Context
	// Forced is cancelled by a second signal after Graceful was: the order
	// to give up the drain and exit now.
	Forced context.Context
	stop   func()
}

// WatchSignals starts watching the configured signals. Call Stop once the
// contexts are no longer needed, to restore the signals' default behaviour.
func WatchSignals(parent context.Context, c *Config) *Signals {
	numbers := c.OSSignals
	if len(numbers) == 0 {
		// signal.Notify with no signals would catch every signal.
		numbers = []int{int(syscall.SIGTERM), int(syscall.SIGINT)}
	}
	sigs := make([]os.Signal, 0, len(numbers))
	for _, n := range numbers {
		sigs = append(sigs, syscall.Signal(n))
	}
	graceful, cancelGraceful := context.WithCancel(parent)
	forced, cancelForced := context.WithCancel(context.WithoutCancel(parent))
	ch := make(chan os.Signal, 2)
	signal.Notify(ch, sigs...)
	quit := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-ch:
			case <-quit:
				return
			}
			if graceful.Err() == nil {
				cancelGraceful()
				continue
			}
			cancelForced()
			return
		}
	}()
	return &Signals{Graceful: graceful, Forced: forced, stop: func() {
		signal.Stop(ch)
		close(quit)
		<-done
		cancelGraceful()
		cancelForced()
	}}
}

// Stop stops watching and cancels both contexts; call it once.
func (s *Signals) Stop() { s.stop() }
