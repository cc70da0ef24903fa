package v1

//go:generate go run go.uber.org/mock/mockgen@v0.6.0 -destination mock_types_test.go -package v1 github.com/asecurityteam/vpcflow-grapherd/pkg/types Storage,Marker,Queuer,Digester
