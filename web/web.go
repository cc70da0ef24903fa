// Package web serves the page that explores graphs in a browser. The page
// is built from web/src into web/dist (make web) and embedded in the
// binary, so the service needs nothing else installed and no internet
// access to show it; make check-assets fails when dist/ does not match its
// sources.
package web

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"strconv"
	"strings"
	"time"
)

// Path is where the page is mounted: the page at Path+"/", its assets
// beside it.
const Path = "/ui"

//go:embed dist
var dist embed.FS

// contentSecurityPolicy lets the page run only its own script and style and
// talk only to its own origin. ForceAtlas2's layout runs in a worker that
// its library starts from a blob: URL of the bundled code, hence worker-src.
const contentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; " +
	"connect-src 'self'; worker-src blob:; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

// asset is one embedded file with its validator.
type asset struct {
	body        []byte
	etag        string
	contentType string
}

// Handler serves the page and its assets under Path. Every answer carries
// the security headers; assets are revalidated by ETag, since an upgrade of
// the binary changes them without changing their names.
func Handler() http.Handler {
	assets := map[string]asset{}
	sub, _ := fs.Sub(dist, "dist")
	_ = fs.WalkDir(sub, ".", func(name string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		body, err := fs.ReadFile(sub, name)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(body)
		ct := mime.TypeByExtension(path.Ext(name))
		if ct == "" {
			ct = "application/octet-stream"
		}
		assets["/"+name] = asset{body: body, etag: `"` + hex.EncodeToString(sum[:8]) + `"`, contentType: ct}
		return nil
	})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", contentSecurityPolicy)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("X-Frame-Options", "DENY")
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			h.Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		name, ok := strings.CutPrefix(r.URL.Path, Path)
		switch {
		case !ok:
			http.NotFound(w, r)
			return
		case name == "":
			target := Path + "/"
			if r.URL.RawQuery != "" {
				target += "?" + r.URL.RawQuery
			}
			http.Redirect(w, r, target, http.StatusMovedPermanently)
			return
		case name == "/":
			name = "/index.html"
		}
		a, ok := assets[name]
		if !ok {
			http.NotFound(w, r)
			return
		}
		h.Set("Content-Type", a.contentType)
		h.Set("ETag", a.etag)
		h.Set("Cache-Control", "no-cache")
		http.ServeContent(w, r, name, time.Time{}, bytes.NewReader(a.body))
	})
}

// RedirectBrowsers sends a browser that opens the service's root with no
// window (GET / asking for HTML, no start or stop) to the page; every other
// request, the API's included, goes on to next unchanged.
func RedirectBrowsers(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		if r.Method == http.MethodGet && r.URL.Path == "/" && !q.Has("start") && !q.Has("stop") && acceptsHTML(r.Header.Values("Accept")) {
			http.Redirect(w, r, Path+"/", http.StatusSeeOther)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// acceptsHTML tells whether an Accept header names text/html with a non-zero
// quality; */* alone (curl, fetch) does not count, so API clients are never
// redirected.
func acceptsHTML(values []string) bool {
	for _, v := range values {
		for _, part := range strings.Split(v, ",") {
			fields := strings.Split(part, ";")
			if !strings.EqualFold(strings.TrimSpace(fields[0]), "text/html") {
				continue
			}
			quality := 1.0
			for _, f := range fields[1:] {
				k, val, _ := strings.Cut(strings.TrimSpace(f), "=")
				if q, err := strconv.ParseFloat(val, 64); err == nil && strings.EqualFold(k, "q") {
					quality = q
				}
			}
			if quality > 0 {
				return true
			}
		}
	}
	return false
}
