package runtime

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// decodeLines parses JSON log lines.
func decodeLines(t *testing.T, b []byte) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		if line == "" {
			continue
		}
		var m map[string]any
		require.NoError(t, json.Unmarshal([]byte(line), &m), "line %q", line)
		out = append(out, m)
	}
	return out
}

func TestNewLoggerLevels(t *testing.T) {
	t.Parallel()
	tests := []struct {
		level string
		want  []string
	}{
		{"DEBUG", []string{"d", "i", "w", "e"}},
		{"INFO", []string{"i", "w", "e"}},
		{"WARN", []string{"w", "e"}},
		{"ERROR", []string{"e"}},
		{"", []string{"i", "w", "e"}},
	}
	for _, tt := range tests {
		t.Run(tt.level, func(t *testing.T) {
			t.Parallel()
			var buf bytes.Buffer
			l := NewLogger(&Config{LoggerOutput: LoggerOutputStdout, LoggerLevel: tt.level}, &buf)
			l.Debug("d")
			l.Info("i")
			l.Warn("w")
			l.Error("e")
			var got []string
			for _, m := range decodeLines(t, buf.Bytes()) {
				got = append(got, m[MessageKey].(string))
				require.NotContains(t, m, "msg", "the message is under the seed's key")
			}
			require.Equal(t, tt.want, got)
		})
	}
}

func TestNewLoggerNullDiscards(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	l := NewLogger(&Config{LoggerOutput: "NULL", LoggerLevel: "DEBUG"}, &buf)
	l.Error("e")
	LogDependencyFailure(context.Background(), l, DependencyStorage, errors.New("down"))
	require.Zero(t, buf.Len())
	require.False(t, l.Enabled(context.Background(), slog.LevelError), "no work is done for discarded logs")
}

func TestLogEvents(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		log   func(l *slog.Logger)
		level string
		want  map[string]any
	}{
		{"dependency failure", func(l *slog.Logger) {
			LogDependencyFailure(context.Background(), l, DependencyDigester, errors.New("digester answered 500"), slog.String("id", "g1"))
		}, "ERROR", map[string]any{MessageKey: "dependency-failure", AttrDependency: "digester", AttrReason: "digester answered 500", "id": "g1"}},
		{"invalid input", func(l *slog.Logger) {
			LogEvent(context.Background(), l, slog.LevelInfo, EventInvalidInput, errors.New("start after stop"))
		}, "INFO", map[string]any{MessageKey: "invalid-input", AttrReason: "start after stop"}},
		{"not found", func(l *slog.Logger) {
			LogEvent(context.Background(), l, slog.LevelInfo, EventNotFound, errors.New("no graph"))
		}, "INFO", map[string]any{MessageKey: "not-found", AttrReason: "no graph"}},
		{"conflict", func(l *slog.Logger) {
			LogEvent(context.Background(), l, slog.LevelInfo, EventConflict, errors.New("exists"))
		}, "INFO", map[string]any{MessageKey: "conflict", AttrReason: "exists"}},
		{"unknown failure", func(l *slog.Logger) {
			LogEvent(context.Background(), l, slog.LevelError, EventUnknownFailure, nil)
		}, "ERROR", map[string]any{MessageKey: "unknown-failure", AttrReason: ""}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var buf bytes.Buffer
			tt.log(NewLogger(&Config{}, &buf))
			lines := decodeLines(t, buf.Bytes())
			require.Len(t, lines, 1)
			require.Equal(t, tt.level, lines[0]["level"])
			for k, v := range tt.want {
				require.Equal(t, v, lines[0][k], "key %s", k)
			}
		})
	}
}

func TestLogEventsEscapeHostileInput(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	LogEvent(context.Background(), NewLogger(&Config{}, &buf), slog.LevelInfo, EventInvalidInput,
		errors.New("bad start \"x\"\n{\"message\":\"forged\",\"level\":\"ERROR\"}"))
	lines := decodeLines(t, buf.Bytes())
	require.Len(t, lines, 1, "a newline in input cannot start a second record")
	require.Equal(t, "invalid-input", lines[0][MessageKey])
}

func TestLogEventsNilLogger(t *testing.T) {
	t.Parallel()
	require.NotPanics(t, func() {
		LogDependencyFailure(context.Background(), nil, DependencyMarker, errors.New("x"))
	})
}

func TestEventNamesMatchSeed(t *testing.T) {
	t.Parallel()
	require.Equal(t, []string{"dependency-failure", "invalid-input", "not-found", "conflict", "unknown-failure"},
		[]string{EventDependencyFailure, EventInvalidInput, EventNotFound, EventConflict, EventUnknownFailure})
	require.Equal(t, []string{"storage", "marker", "queuer", "digester", "grapher"},
		[]string{DependencyStorage, DependencyMarker, DependencyQueuer, DependencyDigester, DependencyGrapher})
}
