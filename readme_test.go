package main

import (
	"bytes"
	"context"
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/asecurityteam/vpcflow-grapherd/pkg/convert"
)

// fenced returns the body of the first code block fenced with ```lang
// after marker in doc.
func fenced(t *testing.T, doc, marker, lang string) string {
	t.Helper()
	_, rest, ok := strings.Cut(doc, marker)
	require.True(t, ok, "README has no %q", marker)
	_, rest, ok = strings.Cut(rest, "```"+lang+"\n")
	require.True(t, ok, "README has no %s block after %q", lang, marker)
	body, _, ok := strings.Cut(rest, "```\n")
	require.True(t, ok, "the %s block is not closed", lang)
	return body
}

// TestReadmeGraphExample: the README's DOT example is exactly what the
// converter writes for the README's flow log lines.
func TestReadmeGraphExample(t *testing.T) {
	t.Parallel()
	readme, err := os.ReadFile("README.md")
	require.NoError(t, err)
	lines := fenced(t, string(readme), "## The graph", "text")
	want := fenced(t, string(readme), "## The graph", "dot")
	var out, errOut bytes.Buffer
	require.NoError(t, convert.Run(context.Background(), nil, strings.NewReader(lines), &out, &errOut), errOut.String())
	require.Equal(t, want, out.String())
}
