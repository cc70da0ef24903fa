package runtime

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

// SignalContext returns a context that is cancelled when the process
// receives one of RUNTIME_SIGNALS_OS_SIGNALS (SIGTERM and SIGINT when the
// Config lists none), or when parent is done: the service treats it as the
// order to shut down gracefully. Call the returned stop function once the
// context is no longer needed, to restore the signals' default behaviour, so
// a second Ctrl-C kills a process stuck in shutdown.
func SignalContext(parent context.Context, c *Config) (context.Context, context.CancelFunc) {
	numbers := c.OSSignals
	if len(numbers) == 0 {
		// signal.NotifyContext with no signals would catch every signal.
		numbers = []int{int(syscall.SIGTERM), int(syscall.SIGINT)}
	}
	sigs := make([]os.Signal, 0, len(numbers))
	for _, n := range numbers {
		sigs = append(sigs, syscall.Signal(n))
	}
	return signal.NotifyContext(parent, sigs...)
}
