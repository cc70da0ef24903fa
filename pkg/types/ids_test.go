package types

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestValidateID(t *testing.T) {
	t.Parallel()
	for _, id := range []string{"6357a262-b301-5f60-a2d4-644e10c814ea", "A-z-0", strings.Repeat("a", MaxIDLength)} {
		require.NoError(t, ValidateID(id), id)
	}
	for _, id := range []string{"", "../etc/passwd", "a/b", "a.dot", "a b", "a\nb", "é", strings.Repeat("a", MaxIDLength+1)} {
		err := ValidateID(id)
		require.ErrorIs(t, err, ErrInvalidInput, "%q", id)
		require.True(t, IsPermanent(err))
		require.NotContains(t, err.Error(), "\n", "an id must not break a log line")
	}
}
