package frontend

import (
	"cmp"
	"net/http"
	"slices"

	"google.golang.org/grpc"
)

// debugData is what /debug shows. Each part that cannot be had says why in
// its Note, and the rest of the page still renders.
type debugData struct {
	Target    string
	State     string
	StateNote string
	Addrs     []string
	AddrsNote string
	Calls     []callCount
	CallsNote string
}

type callCount struct {
	Method string
	Code   string
	Count  uint64
}

// The page asks the backend for what it can tell; *client.Client can tell
// all of it, a test double maybe nothing.
type (
	connBackend     interface{ Conn() *grpc.ClientConn }
	resolverBackend interface{ ResolvedAddrs() []string }
)

// debug shows how the frontend sees its backend: the connection's state,
// the addresses its target resolved to, and the calls made so far by method
// and code, read from the gRPC client metrics.
func (s *Server) debug(w http.ResponseWriter, r *http.Request) {
	var d debugData
	if b, ok := s.backend.(connBackend); ok && b.Conn() != nil {
		d.Target = b.Conn().CanonicalTarget()
		d.State = b.Conn().GetState().String()
	} else {
		d.StateNote = "The connection state is unavailable: the backend is not a gRPC client connection."
	}
	if b, ok := s.backend.(resolverBackend); ok {
		d.Addrs = b.ResolvedAddrs()
		if len(d.Addrs) == 0 {
			d.AddrsNote = "The backend's name has not resolved yet (the connection resolves it on the first call)."
		}
	} else {
		d.AddrsNote = "The resolved addresses are unavailable for this backend."
	}
	d.Calls, d.CallsNote = s.callCounts()
	s.render(w, r, http.StatusOK, "debug.html", view{Title: "Debug · grpcplay", Nav: debugPath, Data: d})
}

// callCounts reads the gRPC client's handled totals from the registry.
func (s *Server) callCounts() ([]callCount, string) {
	if s.cfg.Metrics == nil {
		return nil, "Call counts are unavailable: metrics are off."
	}
	families, err := s.cfg.Metrics.Gather()
	if err != nil && len(families) == 0 {
		return nil, "Call counts are unavailable: " + err.Error()
	}
	var calls []callCount
	for _, f := range families {
		if f.GetName() != "grpc_client_handled_total" {
			continue
		}
		for _, m := range f.GetMetric() {
			n := uint64(m.GetCounter().GetValue())
			if n == 0 {
				continue
			}
			c := callCount{Count: n}
			var service, method string
			for _, l := range m.GetLabel() {
				switch l.GetName() {
				case "grpc_service":
					service = l.GetValue()
				case "grpc_method":
					method = l.GetValue()
				case "grpc_code":
					c.Code = l.GetValue()
				}
			}
			c.Method = "/" + service + "/" + method
			calls = append(calls, c)
		}
	}
	if len(calls) == 0 {
		// The client's series appear with its first call.
		return nil, "No calls yet."
	}
	slices.SortFunc(calls, func(a, b callCount) int {
		return cmp.Or(cmp.Compare(a.Method, b.Method), cmp.Compare(a.Code, b.Code))
	})
	return calls, ""
}
