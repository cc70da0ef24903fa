package grapherd

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"encoding/xml"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/stretchr/testify/require"
	"gonum.org/v1/gonum/graph/formats/dot"

	"github.com/asecurityteam/vpcflow-grapherd/pkg/awss3/s3test"
	"github.com/asecurityteam/vpcflow-grapherd/pkg/grapher"
	"github.com/asecurityteam/vpcflow-grapherd/pkg/marker"
	"github.com/asecurityteam/vpcflow-grapherd/pkg/storage"
)

// viewBackend is a storage the view routes are tested on, with a way to
// drop a graph's flow table, as a graph made before tables existed has none.
type viewBackend struct {
	name      string
	env       map[string]string
	storage   func(t *testing.T) *Service
	dropTable func(t *testing.T, id string)
	objects   func(t *testing.T, id string) []string
}

func viewBackends(t *testing.T) []viewBackend {
	dir := t.TempDir()
	gw := s3test.Start(t)
	bucket := gw.NewBucket(t)
	client := gw.Client(t)
	listS3 := func(t *testing.T, id string) []string {
		out, err := client.ListObjectsV2(context.Background(), &s3.ListObjectsV2Input{Bucket: aws.String(bucket), Prefix: aws.String(id)})
		require.NoError(t, err)
		var keys []string
		for _, o := range out.Contents {
			keys = append(keys, aws.ToString(o.Key))
		}
		return keys
	}
	return []viewBackend{
		{
			name:    "files",
			storage: func(*testing.T) *Service { return &Service{Storage: &storage.File{Dir: dir}} },
			dropTable: func(t *testing.T, id string) {
				require.NoError(t, os.Remove(filepath.Join(dir, id+".table")))
			},
			objects: func(t *testing.T, id string) []string {
				names, err := filepath.Glob(filepath.Join(dir, id+".*"))
				require.NoError(t, err)
				for i := range names {
					names[i] = filepath.Base(names[i])
				}
				return names
			},
		},
		{
			name: "s3",
			env: map[string]string{
				"GRAPH_STORAGE_BUCKET": bucket, "AWS_ENDPOINT_URL_S3": gw.Endpoint, "USE_IAM": "false",
				"AWS_ACCESS_KEY_ID": gw.AccessKey, "AWS_SECRET_ACCESS_KEY": gw.SecretKey,
			},
			storage: func(*testing.T) *Service { return &Service{} },
			dropTable: func(t *testing.T, id string) {
				_, err := client.DeleteObject(context.Background(), &s3.DeleteObjectInput{Bucket: aws.String(bucket), Key: aws.String(id + ".table")})
				require.NoError(t, err)
			},
			objects: listS3,
		},
	}
}

// rawGet asks for path with the given headers and no transparent
// decompression, so the encoding on the wire is what is checked.
func rawGet(t *testing.T, url string, header ...string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	require.NoError(t, err)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	res, err := (&http.Client{Transport: &http.Transport{DisableCompression: true}}).Do(req)
	require.NoError(t, err)
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	require.NoError(t, err)
	return res, b
}

// graphologyGraph is the JSON view as graphology serializes graphs.
type graphologyGraph struct {
	Attributes map[string]any `json:"attributes"`
	Options    map[string]any `json:"options"`
	Nodes      []struct {
		Key        string         `json:"key"`
		Attributes map[string]any `json:"attributes"`
	} `json:"nodes"`
	Edges []struct {
		Key, Source, Target string
		Attributes          map[string]any `json:"attributes"`
	} `json:"edges"`
}

// TestViewRoutes makes a graph through the worker on files and on S3
// (versitygw) and asks for its views in every format: the plain GET is still
// the stored DOT byte for byte, views are well-formed in each format, the
// stored DOT alone (no table) answers the same JSON, and gzip, Accept, the
// SVG cache, bad parameters and caps behave as documented.
func TestViewRoutes(t *testing.T) {
	t.Parallel()
	digest, err := os.ReadFile("../testdata/views/basic.log")
	require.NoError(t, err)
	var wantDOT bytes.Buffer
	_, err = (&grapher.DOT{}).Graph(context.Background(), &wantDOT, bytes.NewReader(digest))
	require.NoError(t, err)

	for _, b := range viewBackends(t) {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			s := b.storage(t)
			s.Digester = staticDigest(string(digest))
			s.Marker = &marker.Memory{Timeout: time.Minute}
			env := map[string]string{"GRAPHERD_VIEW_MAX_SVG_NODES": "8"}
			for k, v := range b.env {
				env[k] = v
			}
			url := serve(t, s, env)
			id := jobID(t, window)

			// Before the graph exists: 404 for a view too.
			res, body := rawGet(t, url+"/?"+window+"&format=json")
			require.Equal(t, http.StatusNotFound, res.StatusCode, string(body))

			status, _, body2 := do(t, url, http.MethodPost, "/topic/event", strings.NewReader(jobBody(t, window)))
			require.Equal(t, http.StatusNoContent, status, body2)
			require.ElementsMatch(t, []string{id + ".dot", id + ".table"}, b.objects(t, id))

			// The plain GET is the stored DOT, byte for byte, gzip or not.
			res, body = rawGet(t, url+"/?"+window)
			require.Equal(t, http.StatusOK, res.StatusCode)
			require.Equal(t, "text/vnd.graphviz; charset=utf-8", res.Header.Get("Content-Type"))
			require.Empty(t, res.Header.Get("Content-Encoding"))
			require.Equal(t, wantDOT.String(), string(body))
			res, body = rawGet(t, url+"/?"+window, "Accept-Encoding", "gzip")
			require.Equal(t, "gzip", res.Header.Get("Content-Encoding"))
			require.Equal(t, wantDOT.String(), gunzip(t, body))
			res, body = rawGet(t, url+"/?"+window+"&format=dot", "Accept", "text/html,*/*")
			require.Equal(t, wantDOT.String(), string(body), "format=dot alone and a browser's Accept keep the stored DOT")

			// JSON: graphology's serialized graph.
			res, jsonView := rawGet(t, url+"/?"+window+"&format=json&group=cidr:24")
			require.Equal(t, http.StatusOK, res.StatusCode, string(jsonView))
			require.Equal(t, "application/json", res.Header.Get("Content-Type"))
			var g graphologyGraph
			require.NoError(t, json.Unmarshal(jsonView, &g))
			require.Equal(t, id, g.Attributes["id"])
			require.Equal(t, "2026-11-01T10:00:00Z", g.Attributes["start"])
			require.Equal(t, map[string]any{"group": "cidr:24:64"}, g.Attributes["params"])
			require.EqualValues(t, 14, g.Attributes["records_read"])
			require.EqualValues(t, len(g.Nodes), g.Attributes["nodes"])
			require.EqualValues(t, len(g.Edges), g.Attributes["edges"])
			require.Equal(t, "directed", g.Options["type"])
			require.Len(t, g.Nodes, 6)
			require.Equal(t, "10.0.1.0/24", g.Nodes[0].Key)
			for _, key := range []string{"label", "addresses", "bytes_in", "bytes_out", "flows_in", "flows_out", "rejected_in", "rejected_out", "x", "y"} {
				require.Contains(t, g.Nodes[0].Attributes, key)
			}
			for _, key := range []string{"flows", "packets", "bytes", "accepted", "rejected", "first", "last", "ports", "other_ports"} {
				require.Contains(t, g.Edges[0].Attributes, key)
			}

			// The same view through Accept, gzip'd.
			res, body = rawGet(t, url+"/?"+window+"&group=cidr:24", "Accept", "application/json", "Accept-Encoding", "gzip")
			require.Equal(t, "application/json", res.Header.Get("Content-Type"))
			require.Equal(t, "gzip", res.Header.Get("Content-Encoding"))
			require.Equal(t, string(jsonView), gunzip(t, body))

			// CSV and readable DOT.
			res, body = rawGet(t, url+"/?"+window+"&action=REJECT", "Accept", "text/csv")
			require.Equal(t, "text/csv; charset=utf-8", res.Header.Get("Content-Type"))
			lines := strings.Split(strings.TrimSpace(string(body)), "\n")
			require.Equal(t, "source,target,flows,packets,bytes,accepted,rejected,first,last,ports,other_ports", lines[0])
			require.Len(t, lines, 4, string(body))
			res, body = rawGet(t, url+"/?"+window+"&format=dot&group=cidr:16")
			require.Equal(t, "text/vnd.graphviz; charset=utf-8", res.Header.Get("Content-Type"))
			_, err := dot.ParseBytes(body)
			require.NoError(t, err, "the readable DOT parses")
			require.Contains(t, string(body), `color="#d62728"`)

			// SVG, laid out by Graphviz, then served from its cached copy.
			res, svg := rawGet(t, url+"/?"+window+"&format=svg&group=cidr:24")
			require.Equal(t, http.StatusOK, res.StatusCode, string(svg))
			require.Equal(t, "image/svg+xml", res.Header.Get("Content-Type"))
			requireSVG(t, svg)
			require.Len(t, b.objects(t, id), 3, "the SVG is cached beside the graph")
			_, again := rawGet(t, url+"/?"+window+"&group=cidr:24:64&format=svg")
			require.Equal(t, svg, again)

			// Over the SVG cap: 422 naming the count, never a cut view.
			res, body = rawGet(t, url+"/?"+window+"&format=svg")
			require.Equal(t, http.StatusUnprocessableEntity, res.StatusCode)
			require.Contains(t, message(t, string(body)), "at least 9 nodes, more than the limit of 8")

			// Bad parameters: 400 naming the parameter.
			for query, param := range map[string]string{"group=cidr:40": "group", "format=png": "format", "top=-1": "top", "port=x": "port"} {
				res, body = rawGet(t, url+"/?"+window+"&"+query)
				require.Equal(t, http.StatusBadRequest, res.StatusCode, query)
				require.Contains(t, message(t, string(body)), "parameter "+param+"=", query)
			}

			// Without its table the graph answers the same views from its DOT.
			b.dropTable(t, id)
			_, fromDOT := rawGet(t, url+"/?"+window+"&format=json&group=cidr:24")
			require.Equal(t, string(jsonView), string(fromDOT))
		})
	}
}

// TestViewCap answers a JSON view over GRAPHERD_VIEW_MAX_NODES with 422.
func TestViewCap(t *testing.T) {
	t.Parallel()
	digest, err := os.ReadFile("../testdata/views/basic.log")
	require.NoError(t, err)
	h := newHarness(t, &Service{Digester: staticDigest(string(digest))}, map[string]string{"GRAPHERD_VIEW_MAX_NODES": "5"})
	status, _, body := h.do(t, http.MethodPost, "/topic/event", strings.NewReader(jobBody(t, window)))
	require.Equal(t, http.StatusNoContent, status, body)
	status, _, body = h.do(t, http.MethodGet, "/?"+window+"&format=json", nil)
	require.Equal(t, http.StatusUnprocessableEntity, status)
	msg := message(t, body)
	require.Contains(t, msg, "at least 6 nodes, more than the limit of 5")
	require.Contains(t, msg, "group=cidr:24")
	status, _, _ = h.do(t, http.MethodGet, "/?"+window+"&format=json&group=cidr:8", nil)
	require.Equal(t, http.StatusOK, status)
}

func gunzip(t *testing.T, b []byte) string {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(b))
	require.NoError(t, err)
	out, err := io.ReadAll(zr)
	require.NoError(t, err)
	return string(out)
}

// requireSVG parses b as XML and checks its root is an <svg> with a node.
func requireSVG(t *testing.T, b []byte) {
	t.Helper()
	dec := xml.NewDecoder(bytes.NewReader(b))
	var root string
	var titles int
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		require.NoError(t, err)
		if el, ok := tok.(xml.StartElement); ok {
			if root == "" {
				root = el.Name.Local
			}
			if el.Name.Local == "title" {
				titles++
			}
		}
	}
	require.Equal(t, "svg", root)
	require.Greater(t, titles, 1)
}

// tableFailStorage keeps graphs but cannot store flow tables.
type tableFailStorage struct{ storage.Memory }

func (s *tableFailStorage) StoreObject(_ context.Context, _, _ string, r io.Reader) error {
	_, _ = io.CopyN(io.Discard, r, 10)
	return errors.New("disk full")
}

// TestTableStoreFailureFailsTheGraph shows a graph whose table cannot be
// stored is not stored either: the job fails as a storage failure, to be
// retried, rather than leaving a graph without its table.
func TestTableStoreFailureFailsTheGraph(t *testing.T) {
	t.Parallel()
	st := &tableFailStorage{}
	h := newHarness(t, &Service{Digester: staticDigest(sampleV2), Storage: st}, nil)
	status, _, body := h.do(t, http.MethodPost, "/topic/event", strings.NewReader(jobBody(t, window)))
	require.Equal(t, http.StatusInternalServerError, status)
	require.Equal(t, "storage failed while storing the graph", message(t, body))
	ok, err := st.Exists(context.Background(), jobID(t, window))
	require.NoError(t, err)
	require.False(t, ok, "the graph was stored without its table")
}
