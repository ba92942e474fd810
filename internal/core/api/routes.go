package api

import (
	"fmt"
	"net/http"

	"github.com/julienschmidt/httprouter"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// routes builds the router: FunLess's v1 API plus edgefaas's additions.
func (s *Server) routes() *httprouter.Router {
	r := httprouter.New()
	s.router = r
	r.HandleMethodNotAllowed = true
	r.NotFound = http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		s.wrap("unmatched", "", func(w http.ResponseWriter, req *http.Request, _ httprouter.Params) {
			writeError(w, http.StatusNotFound, fmt.Sprintf("Not Found: no endpoint %s %s", req.Method, req.URL.Path))
		})(w, req, nil)
	})
	r.MethodNotAllowed = http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		s.wrap("unmatched", "", func(w http.ResponseWriter, req *http.Request, _ httprouter.Params) {
			writeError(w, http.StatusMethodNotAllowed, fmt.Sprintf("Method Not Allowed: %s is not supported on %s (allowed: %s)", req.Method, req.URL.Path, w.Header().Get("Allow")))
		})(w, req, nil)
	})
	r.PanicHandler = nil // wrap recovers

	s.handle(http.MethodGet, "/v1/", public, s.root)
	s.handle(http.MethodGet, "/healthz", public, s.healthz)
	s.handle(http.MethodGet, "/readyz", public, s.readyz)
	metricsAccess := user
	if s.cfg.PublicMetrics {
		metricsAccess = public
	}
	s.promOpts = promhttp.HandlerOpts{ErrorLog: slogPrinter{s}}
	s.prom = promhttp.HandlerFor(s.reg, s.promOpts)
	s.handle(http.MethodGet, "/metrics", metricsAccess, s.serveMetrics)

	s.handle(http.MethodGet, "/v1/version", user, s.version)
	s.handle(http.MethodGet, "/v1/admin/status", admin, s.adminStatus)
	s.handle(http.MethodGet, "/v1/admin/group", admin, s.groupStatus)
	s.handle(http.MethodDelete, "/v1/admin/group/:id", admin, s.removeGroupMember)
	s.handle(http.MethodPost, "/v1/admin/secrets/rotate", admin, s.rotateSecretsKey)

	s.handle(http.MethodGet, "/v1/admin/subjects", admin, s.listSubjects)
	s.handle(http.MethodPost, "/v1/admin/subjects", admin, s.createSubject)
	s.handle(http.MethodPut, "/v1/admin/subjects/:name", admin, s.rotateSubject)
	s.handle(http.MethodDelete, "/v1/admin/subjects/:name", admin, s.revokeSubject)
	s.handle(http.MethodGet, "/v1/admin/subjects/:name/egress", admin, s.getSubjectEgress)
	s.handle(http.MethodPut, "/v1/admin/subjects/:name/egress", admin, s.setSubjectEgress)
	s.handle(http.MethodDelete, "/v1/admin/subjects/:name/egress", admin, s.clearSubjectEgress)
	s.handle(http.MethodGet, "/v1/admin/subjects/:name/quota", admin, s.getSubjectQuota)
	s.handle(http.MethodPut, "/v1/admin/subjects/:name/quota", admin, s.setSubjectQuota)
	s.handle(http.MethodDelete, "/v1/admin/subjects/:name/quota", admin, s.clearSubjectQuota)

	s.handle(http.MethodGet, "/v1/nodes", admin, s.listNodes)
	s.handle(http.MethodPost, "/v1/nodes", admin, s.connectNode)
	s.handle(http.MethodPost, "/v1/nodes/join", public, s.joinNode)
	s.handle(http.MethodPost, "/v1/admin/join-tokens", admin, s.createJoinToken)
	s.handle(http.MethodGet, "/v1/admin/node-certificates", admin, s.listNodeCerts)
	s.handle(http.MethodPost, "/v1/admin/nodes/:name/revoke", admin, s.nodeAdmin("revoke"))
	s.handle(http.MethodPost, "/v1/admin/nodes/:name/rotate", admin, s.nodeAdmin("rotate"))

	s.handle(http.MethodGet, "/v1/fn", user, s.listModules)
	s.handle(http.MethodPost, "/v1/fn", user, s.createModule)
	s.handle(http.MethodGet, "/v1/fn/:mod", user, s.getModule)
	s.handle(http.MethodPut, "/v1/fn/:mod", user, s.caughtUp(s.renameModule))
	s.handle(http.MethodDelete, "/v1/fn/:mod", user, s.caughtUp(s.deleteModule))
	s.handle(http.MethodPost, "/v1/fn/:mod", user, s.caughtUp(s.createFunction))
	s.handle(http.MethodGet, "/v1/fn/:mod/:fn", user, s.getFunction)
	s.handle(http.MethodPut, "/v1/fn/:mod/:fn", user, s.caughtUp(s.updateFunction))
	s.handle(http.MethodDelete, "/v1/fn/:mod/:fn", user, s.caughtUp(s.deleteFunction))
	s.handle(http.MethodPost, "/v1/fn/:mod/:fn", user, s.invoke)

	s.handle(http.MethodGet, "/v1/scripts/app", user, s.listScripts)
	s.handle(http.MethodPost, "/v1/scripts/app", user, s.createScript)
	s.handle(http.MethodGet, "/v1/scripts/app/:name", user, s.getScript)
	s.handle(http.MethodDelete, "/v1/scripts/app/:name", user, s.caughtUp(s.deleteScript))

	s.handle(http.MethodGet, "/v1/activations", user, s.listActivations)
	s.handle(http.MethodGet, "/v1/activations/:id", user, s.getActivation)
	return r
}

// slogPrinter adapts the logger to promhttp's error log.
type slogPrinter struct{ s *Server }

func (p slogPrinter) Println(v ...any) { p.s.log.Warn("metrics: " + fmt.Sprint(v...)) }
