package storage_test

import (
	"testing"

	"github.com/asecurityteam/vpcflow-grapherd/pkg/storage"
	"github.com/asecurityteam/vpcflow-grapherd/pkg/storage/storagetest"
	"github.com/asecurityteam/vpcflow-grapherd/pkg/types"
)

func TestMemoryConformance(t *testing.T) {
	t.Parallel()
	storagetest.Run(t, func(t *testing.T) types.Storage { return &storage.Memory{} })
}
