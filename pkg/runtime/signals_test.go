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

// The tests that send real signals to the test binary do not call
// t.Parallel, nor do their subtests: a top-level test that is not parallel
// runs while every parallel test of the package is still parked at its
// t.Parallel call, so no other test's signal handling can see these signals,
// and no signal arrives while its handler is being stopped (the default
// action of SIGINT, SIGHUP or SIGUSR1 ends the process).

// waitDone waits for ctx to end and returns its cause.
func waitDone(t *testing.T, ctx context.Context, what string) error {
	t.Helper()
	select {
	case <-ctx.Done():
		return context.Cause(ctx)
	case <-time.After(5 * time.Second):
		t.Fatalf("context not cancelled by %s", what)
		return nil
	}
}

func TestSignalContextCancelsOnConfiguredSignal(t *testing.T) {
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
			ctx, stop := SignalContext(context.Background(), &Config{OSSignals: tt.signals})
			defer stop()
			require.NoError(t, ctx.Err())
			require.NoError(t, syscall.Kill(syscall.Getpid(), tt.send))
			cause := waitDone(t, ctx, tt.send.String())
			require.ErrorContains(t, cause, tt.send.String(), "cancelled by the signal sent")
		})
	}
}

// TestSignalContextDefaultsToTermAndInt: an empty list must not mean "every
// signal". SIGWINCH, which is not listed, reaches the process (a channel
// registered for it receives it) without ending the context; SIGINT, sent
// after it, is what ends it.
func TestSignalContextDefaultsToTermAndInt(t *testing.T) {
	winch := make(chan os.Signal, 1)
	signal.Notify(winch, syscall.SIGWINCH)
	defer signal.Stop(winch)
	ctx, stop := SignalContext(context.Background(), &Config{})
	defer stop()

	require.NoError(t, syscall.Kill(syscall.Getpid(), syscall.SIGWINCH))
	select {
	case <-winch:
	case <-time.After(5 * time.Second):
		t.Fatal("SIGWINCH never reached the process")
	}
	require.NoError(t, syscall.Kill(syscall.Getpid(), syscall.SIGINT))
	cause := waitDone(t, ctx, "SIGINT")
	require.ErrorContains(t, cause, syscall.SIGINT.String(), "SIGINT, not SIGWINCH, ended the context")
	require.NotContains(t, cause.Error(), syscall.SIGWINCH.String())
}

func TestSignalContextFollowsParent(t *testing.T) {
	t.Parallel()
	parent, cancel := context.WithCancel(context.Background())
	ctx, stop := SignalContext(parent, &Config{OSSignals: []int{int(syscall.SIGUSR1)}})
	defer stop()
	cancel()
	require.ErrorIs(t, waitDone(t, ctx, "its parent"), context.Canceled)
}
