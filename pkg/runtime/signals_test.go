package runtime

import (
	"context"
	"os"
	"os/signal"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// These tests send real signals to the test process, so none of them runs
// in parallel with another test.

// requireDone waits for ctx to be cancelled.
func requireDone(t *testing.T, ctx context.Context, what string) {
	t.Helper()
	select {
	case <-ctx.Done():
	case <-time.After(5 * time.Second):
		t.Fatal(what)
	}
}

// delivered sends sig to the process and returns once a channel of the
// test's own has received it: by then every channel notified of sig has.
func delivered(t *testing.T, sig syscall.Signal) {
	t.Helper()
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, sig)
	defer signal.Stop(ch)
	require.NoError(t, syscall.Kill(syscall.Getpid(), sig))
	select {
	case <-ch:
	case <-time.After(5 * time.Second):
		t.Fatalf("signal %v not delivered", sig)
	}
}

func TestSignalsCancelOnConfiguredSignal(t *testing.T) {
	tests := []struct {
		name    string
		signals []int
		send    syscall.Signal
	}{
		{"single", []int{int(syscall.SIGUSR1)}, syscall.SIGUSR1},
		{"second of two", []int{int(syscall.SIGHUP), int(syscall.SIGUSR2)}, syscall.SIGUSR2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := WatchSignals(context.Background(), &Config{OSSignals: tt.signals})
			defer s.Stop()
			require.NoError(t, s.Graceful.Err())
			delivered(t, tt.send)
			requireDone(t, s.Graceful, "context not cancelled by the signal")
			require.NoError(t, s.Forced.Err(), "one signal asks for a graceful shutdown only")
		})
	}
}

func TestSignalsDefaultToTermAndInt(t *testing.T) {
	// An empty list must not mean "every signal": SIGWINCH is harmless and
	// must leave the context alone, SIGINT must cancel it.
	s := WatchSignals(context.Background(), &Config{})
	defer s.Stop()
	delivered(t, syscall.SIGWINCH)
	require.NoError(t, s.Graceful.Err(), "an unlisted signal is ignored")
	delivered(t, syscall.SIGINT)
	requireDone(t, s.Graceful, "context not cancelled by SIGINT")
}

func TestSignalsSecondSignalForces(t *testing.T) {
	s := WatchSignals(context.Background(), &Config{OSSignals: []int{int(syscall.SIGUSR1)}})
	defer s.Stop()
	delivered(t, syscall.SIGUSR1)
	requireDone(t, s.Graceful, "first signal")
	delivered(t, syscall.SIGUSR1)
	requireDone(t, s.Forced, "a second signal forces the shutdown")
}

func TestSignalsFollowParent(t *testing.T) {
	parent, cancel := context.WithCancel(context.Background())
	s := WatchSignals(parent, &Config{OSSignals: []int{int(syscall.SIGUSR1)}})
	defer s.Stop()
	cancel()
	requireDone(t, s.Graceful, "context not cancelled with its parent")
	require.NoError(t, s.Forced.Err())
}
