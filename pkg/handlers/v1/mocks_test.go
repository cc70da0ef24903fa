package v1

import "github.com/asecurityteam/vpcflow-grapherd/pkg/types/typesmock"

var (
	NewMockStorage = typesmock.NewMockStorage
	NewMockMarker  = typesmock.NewMockMarker
	NewMockQueuer  = typesmock.NewMockQueuer
)
