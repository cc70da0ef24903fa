package web

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestHandlerServesThePageWithSecurityHeaders(t *testing.T) {
	t.Parallel()
	h := Handler()
	for _, tc := range []struct {
		path, contentType, contains string
	}{
		{"/ui/", "text/html; charset=utf-8", `<script type="module" src="app.js"></script>`},
		{"/ui/index.html", "text/html; charset=utf-8", `id="graph"`},
		{"/ui/app.js", "text/javascript; charset=utf-8", "sigma"},
		{"/ui/style.css", "text/css; charset=utf-8", "#graph"},
		{"/ui/THIRD_PARTY_LICENSES.txt", "text/plain; charset=utf-8", "sigma 3.0.3 (MIT)"},
	} {
		t.Run(tc.path, func(t *testing.T) {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, tc.path, nil))
			require.Equal(t, http.StatusOK, rec.Code)
			require.Equal(t, tc.contentType, rec.Header().Get("Content-Type"))
			require.Contains(t, rec.Body.String(), tc.contains)
			csp := rec.Header().Get("Content-Security-Policy")
			require.Contains(t, csp, "script-src 'self';")
			require.Contains(t, csp, "default-src 'none'")
			require.NotContains(t, csp, "unsafe-inline")
			require.NotContains(t, csp, "unsafe-eval")
			require.Equal(t, "nosniff", rec.Header().Get("X-Content-Type-Options"))
			require.NotEmpty(t, rec.Header().Get("ETag"))
		})
	}
}

func TestPageHasNoInlineScriptOrStyle(t *testing.T) {
	t.Parallel()
	rec := httptest.NewRecorder()
	Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/ui/", nil))
	page := rec.Body.String()
	require.Equal(t, 1, strings.Count(page, "<script"), "one script, loaded from a file")
	require.NotContains(t, page, "<style")
	require.NotContains(t, page, " style=")
	require.NotContains(t, page, " onclick=")
	require.NotContains(t, page, "http://", "the page loads nothing from elsewhere")
	require.NotContains(t, page, "https://")
}

func TestHandlerRevalidatesByETag(t *testing.T) {
	t.Parallel()
	h := Handler()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/ui/app.js", nil))
	etag := rec.Header().Get("ETag")
	req := httptest.NewRequest(http.MethodGet, "/ui/app.js", nil)
	req.Header.Set("If-None-Match", etag)
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	require.Equal(t, http.StatusNotModified, rec.Code)
}

func TestHandlerAnswersOtherRequests(t *testing.T) {
	t.Parallel()
	h := Handler()
	for _, tc := range []struct {
		method, target string
		status         int
		location       string
	}{
		{http.MethodGet, "/ui", http.StatusMovedPermanently, "/ui/"},
		{http.MethodGet, "/ui?start=a&stop=b", http.StatusMovedPermanently, "/ui/?start=a&stop=b"},
		{http.MethodGet, "/ui/nothing.js", http.StatusNotFound, ""},
		{http.MethodGet, "/ui/../web.go", http.StatusNotFound, ""},
		{http.MethodPost, "/ui/", http.StatusMethodNotAllowed, ""},
		{http.MethodHead, "/ui/app.js", http.StatusOK, ""},
	} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(tc.method, tc.target, nil))
		require.Equal(t, tc.status, rec.Code, "%s %s", tc.method, tc.target)
		require.Equal(t, tc.location, rec.Header().Get("Location"), "%s %s", tc.method, tc.target)
		require.Equal(t, "nosniff", rec.Header().Get("X-Content-Type-Options"))
	}
}

func TestRedirectBrowsers(t *testing.T) {
	t.Parallel()
	api := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "api") })
	h := RedirectBrowsers(api)
	const browser = "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8"
	for _, tc := range []struct {
		name, method, target, accept string
		redirected                   bool
	}{
		{"browser at the root", http.MethodGet, "/", browser, true},
		{"html with a quality", http.MethodGet, "/", "text/html;q=0.5", true},
		{"curl", http.MethodGet, "/", "*/*", false},
		{"no Accept", http.MethodGet, "/", "", false},
		{"json", http.MethodGet, "/", "application/json", false},
		{"html refused", http.MethodGet, "/", "text/html;q=0, */*", false},
		{"browser with a window", http.MethodGet, "/?start=2026-11-01T10:00:00Z&stop=2026-11-01T11:00:00Z", browser, false},
		{"browser with only a start", http.MethodGet, "/?start=2026-11-01T10:00:00Z", browser, false},
		{"browser posting", http.MethodPost, "/", browser, false},
		{"browser elsewhere", http.MethodGet, "/healthz", browser, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := httptest.NewRequest(tc.method, tc.target, nil)
			if tc.accept != "" {
				req.Header.Set("Accept", tc.accept)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if tc.redirected {
				require.Equal(t, http.StatusSeeOther, rec.Code)
				require.Equal(t, Path+"/", rec.Header().Get("Location"))
				return
			}
			require.Equal(t, http.StatusOK, rec.Code)
			require.Equal(t, "api", rec.Body.String())
		})
	}
}
