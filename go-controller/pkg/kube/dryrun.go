package kube

import (
	"net/http"

	"k8s.io/client-go/rest"
)

// DryRunWrites turns every write cfg's clients send into a server-side dry
// run (?dryRun=All: admission and validation run, nothing is stored) and
// tells record about it first. Reads pass unchanged. kovn-controller
// --verify uses it to list the API writes a controller would make.
func DryRunWrites(cfg *rest.Config, record func(method, path string)) {
	cfg.Wrap(func(rt http.RoundTripper) http.RoundTripper {
		return dryRunTransport{next: rt, record: record}
	})
}

type dryRunTransport struct {
	next   http.RoundTripper
	record func(method, path string)
}

func (t dryRunTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	switch req.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
		return t.next.RoundTrip(req)
	}
	t.record(req.Method, req.URL.Path)
	// A RoundTripper must not modify the request it was given.
	r := req.Clone(req.Context())
	q := r.URL.Query()
	q.Set("dryRun", "All")
	r.URL.RawQuery = q.Encode()
	return t.next.RoundTrip(r)
}
