package awss3

import (
	"bytes"
	"context"
	"io"
	"testing"
	"time"
)

// BenchmarkBodyRead measures what the no-progress bound costs a body read:
// the same 64 MiB read in 32 KiB reads, plain and through idleBody.
func BenchmarkBodyRead(b *testing.B) {
	data := make([]byte, 64<<20)
	buf := make([]byte, 32<<10)
	for _, wrapped := range []bool{false, true} {
		name := "plain"
		if wrapped {
			name = "idle-bound"
		}
		b.Run(name, func(b *testing.B) {
			b.SetBytes(int64(len(data)))
			b.ReportAllocs()
			for b.Loop() {
				var r io.ReadCloser = io.NopCloser(bytes.NewReader(data))
				if wrapped {
					_, cancel := context.WithCancel(context.Background())
					body := &idleBody{body: r, timeout: time.Minute, cancel: cancel}
					body.timer = time.AfterFunc(time.Minute, body.stall)
					body.timer.Stop()
					r = body
				}
				if _, err := io.CopyBuffer(io.Discard, struct{ io.Reader }{r}, buf); err != nil {
					b.Fatal(err)
				}
				_ = r.Close()
			}
		})
	}
}
