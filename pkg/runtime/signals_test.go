package runtime

import (
	"context"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestSignalContextCancelsOnConfiguredSignal(t *testing.T) {
	t.Parallel()
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
			t.Parallel()
			ctx, stop := SignalContext(context.Background(), &Config{OSSignals: tt.signals})
			defer stop()
			require.NoError(t, ctx.Err())
			require.NoError(t, syscall.Kill(syscall.Getpid(), tt.send))
			select {
			case <-ctx.Done():
			case <-time.After(5 * time.Second):
				t.Fatal("context not cancelled by the signal")
			}
		})
	}
}

func TestSignalContextDefaultsToTermAndInt(t *testing.T) {
	t.Parallel()
	// An empty list must not mean "every signal": SIGWINCH is harmless and
	// must leave the context alone, SIGINT must cancel it.
	ctx, stop := SignalContext(context.Background(), &Config{})
	defer stop()
	require.NoError(t, syscall.Kill(syscall.Getpid(), syscall.SIGWINCH))
	time.Sleep(50 * time.Millisecond)
	require.NoError(t, ctx.Err(), "an unlisted signal is ignored")
	require.NoError(t, syscall.Kill(syscall.Getpid(), syscall.SIGINT))
	select {
	case <-ctx.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("context not cancelled by SIGINT")
	}
}

func TestSignalContextFollowsParent(t *testing.T) {
	t.Parallel()
	parent, cancel := context.WithCancel(context.Background())
	ctx, stop := SignalContext(parent, &Config{OSSignals: []int{int(syscall.SIGUSR1)}})
	defer stop()
	cancel()
	select {
	case <-ctx.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("context not cancelled with its parent")
	}
}
