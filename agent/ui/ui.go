package ui

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/foreshape/foreshape/agent/api"
)

// Prefix is where the dashboard is mounted.
const Prefix = "/ui/"

// cookieName holds the API token in the browser after the login form.
const cookieName = "foreshape_token"

// Backend is what the dashboard reads from the agent; api.Backend satisfies it.
type Backend interface {
	Status(ctx context.Context) api.Status
	Policies(ctx context.Context) []api.Policy
	Forecasts(ctx context.Context) []api.Forecast
}

// Options configure the dashboard.
type Options struct {
	// Tokens returns the accepted API tokens; an empty answer (or a nil
	// func) means ACLs are off and no token is needed.
	Tokens func() []string
	// ReadTokens returns the tokens that may only read: they sign in and
	// see every page, and their forms (pause, resume, cancel, priority)
	// are refused. Nil: none.
	ReadTokens func() []string
	// Act is the act half's backend (queue, reservations, decisions); nil
	// on an agent without it, and the act pages say so.
	Act api.ActBackend
	// Now is the clock running moves are measured with: the agent's data
	// clock, which wrote their start (the simulator's virtual clock under
	// -dev); nil means the wall clock. When it fails, a running move's
	// time so far is not shown.
	Now func(ctx context.Context) (time.Time, error)
	// LeaderCycle, when set, says why a server that does not lead cannot
	// read the leader's last cycle (nil when it can, or leads), for the
	// Localities page to say why it shows no forecast.
	LeaderCycle func(ctx context.Context) error
	// Applied, when set, is how far this server's copy of the replicated
	// state has applied the cluster's log (its Raft index): the Queue page
	// after an action made on the leader that this copy had not applied
	// when its wait ended (NotAppliedError) says so until it has.
	Applied func() uint64
	// Poll is how often the event stream checks for changes; zero means
	// one second.
	Poll   time.Duration
	Logger hclog.Logger
}

//go:embed assets
var assets embed.FS

// Handler serves the dashboard under Prefix.
type Handler struct {
	b       Backend
	opts    Options
	mux     *http.ServeMux
	pages   map[string]*template.Template
	csrfKey []byte
	log     hclog.Logger

	done      chan struct{} // closed by Close
	closeOnce sync.Once
}

// New returns the dashboard for b.
func New(b Backend, opts Options) (*Handler, error) {
	if opts.Logger == nil {
		opts.Logger = hclog.NewNullLogger()
	}
	if opts.Tokens == nil {
		opts.Tokens = func() []string { return nil }
	}
	if opts.Now == nil {
		opts.Now = func(context.Context) (time.Time, error) { return time.Now(), nil }
	}
	if opts.Poll <= 0 {
		opts.Poll = time.Second
	}
	h := &Handler{b: b, opts: opts, mux: http.NewServeMux(), pages: map[string]*template.Template{},
		log: opts.Logger.Named("ui"), csrfKey: make([]byte, 32), done: make(chan struct{})}
	if _, err := rand.Read(h.csrfKey); err != nil {
		return nil, fmt.Errorf("ui: csrf key: %w", err)
	}
	for _, page := range []string{"localities", "cluster", "queue", "decisions", "confirm", "login"} {
		t, err := template.New("layout.html").Funcs(funcs).ParseFS(assets, "assets/layout.html", "assets/"+page+".html")
		if err != nil {
			return nil, fmt.Errorf("ui: template %s: %w", page, err)
		}
		h.pages[page] = t
	}
	static, err := fs.Sub(assets, "assets/static")
	if err != nil {
		return nil, fmt.Errorf("ui: assets: %w", err)
	}
	h.mux.Handle("GET /ui/static/", http.StripPrefix("/ui/static/", cacheable(http.FileServerFS(static))))
	h.mux.HandleFunc("GET /ui/login", h.loginForm)
	h.mux.HandleFunc("POST /ui/login", h.login)
	h.mux.HandleFunc("POST /ui/logout", h.logout)
	h.mux.HandleFunc("GET /ui/{$}", h.auth(h.localities))
	h.mux.HandleFunc("GET /ui/cluster", h.auth(h.cluster))
	h.mux.HandleFunc("GET /ui/queue", h.auth(h.queue))
	h.mux.HandleFunc("POST /ui/queue/pause", h.auth(h.setPaused(true)))
	h.mux.HandleFunc("POST /ui/queue/resume", h.auth(h.setPaused(false)))
	h.mux.HandleFunc("GET /ui/queue/{id}/cancel", h.auth(h.confirmCancel))
	h.mux.HandleFunc("POST /ui/queue/{id}/cancel", h.auth(h.cancel))
	h.mux.HandleFunc("POST /ui/queue/{id}/priority", h.auth(h.setPriority))
	h.mux.HandleFunc("GET /ui/decisions", h.auth(h.decisions))
	h.mux.HandleFunc("GET /ui/events", h.auth(h.events))
	h.mux.HandleFunc("/ui/", h.auth(func(w http.ResponseWriter, r *http.Request) {
		h.render(w, r, http.StatusNotFound, "login", page{Title: "Not found", Error: "No such page: " + r.URL.Path})
	}))
	return h, nil
}

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	hdr := w.Header()
	hdr.Set("Content-Security-Policy", "default-src 'self'; img-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
	hdr.Set("X-Content-Type-Options", "nosniff")
	hdr.Set("Referrer-Policy", "same-origin")
	h.mux.ServeHTTP(w, r)
}

func cacheable(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "public, max-age=300")
		next.ServeHTTP(w, r)
	})
}

// token is the request's API token: the API's headers first, then the cookie.
func token(r *http.Request) string {
	if t := r.Header.Get("X-Foreshape-Token"); t != "" {
		return t
	}
	if t := api.BearerToken(r.Header); t != "" {
		return t
	}
	if c, err := r.Cookie(cookieName); err == nil {
		return c.Value
	}
	return ""
}

// aclOn reports whether tokens are required.
func (h *Handler) aclOn() bool { return len(h.opts.Tokens()) > 0 }

// readTokens are the tokens that may only read.
func (h *Handler) readTokens() []string {
	if h.opts.ReadTokens == nil {
		return nil
	}
	return h.opts.ReadTokens()
}

// denied applies the API's token rule to r: why it is refused, "" when
// it passes.
func (h *Handler) denied(r *http.Request) string {
	return api.Denied(r, token(r), h.opts.Tokens(), h.readTokens())
}

// readOnly reports whether r's token may only read, so that pages leave
// out the forms it may not send.
func (h *Handler) readOnly(r *http.Request) bool {
	return h.aclOn() && !api.ValidToken(token(r), h.opts.Tokens()) && api.ValidToken(token(r), h.readTokens())
}

// auth refuses a request without a valid token with 403 and the login
// form, and a form a read-only token sends with 403 and why.
func (h *Handler) auth(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if why := h.denied(r); why != "" {
			h.log.Warn("request denied", "reason", why, "method", r.Method, "path", r.URL.Path, "remote_addr", r.RemoteAddr)
			if r.URL.Path == "/ui/events" || r.Method != http.MethodGet {
				http.Error(w, "permission denied: "+why, http.StatusForbidden)
				return
			}
			h.render(w, r, http.StatusForbidden, "login", page{Title: "Sign in", Next: r.URL.RequestURI(),
				Error: "This agent requires an API token."})
			return
		}
		next(w, r)
	}
}

// csrf is the value every form of the dashboard carries: an HMAC of the
// request's token under a key that lives as long as the agent process.
func (h *Handler) csrf(r *http.Request) string {
	m := hmac.New(sha256.New, h.csrfKey)
	m.Write([]byte(token(r)))
	return hex.EncodeToString(m.Sum(nil))
}

// checkCSRF refuses a form without the right CSRF field.
func (h *Handler) checkCSRF(w http.ResponseWriter, r *http.Request) bool {
	if !hmac.Equal([]byte(r.PostFormValue("csrf")), []byte(h.csrf(r))) {
		http.Error(w, "forbidden: the form is stale or came from another site; reload the page and try again", http.StatusForbidden)
		return false
	}
	return true
}

func (h *Handler) loginForm(w http.ResponseWriter, r *http.Request) {
	h.render(w, r, http.StatusOK, "login", page{Title: "Sign in", Next: safeNext(r.URL.Query().Get("next"))})
}

func (h *Handler) login(w http.ResponseWriter, r *http.Request) {
	tok := strings.TrimSpace(r.PostFormValue("token"))
	next := safeNext(r.PostFormValue("next"))
	if h.aclOn() && !api.ValidToken(tok, h.opts.Tokens()) && !api.ValidToken(tok, h.readTokens()) {
		h.log.Warn("dashboard sign-in refused: invalid token", "remote_addr", r.RemoteAddr)
		h.render(w, r, http.StatusForbidden, "login", page{Title: "Sign in", Next: next, Error: "That token is not valid."})
		return
	}
	http.SetCookie(w, &http.Cookie{Name: cookieName, Value: tok, Path: Prefix, HttpOnly: true,
		Secure: r.TLS != nil, SameSite: http.SameSiteStrictMode})
	http.Redirect(w, r, next, http.StatusSeeOther)
}

func (h *Handler) logout(w http.ResponseWriter, r *http.Request) {
	if !h.checkCSRF(w, r) {
		return
	}
	http.SetCookie(w, &http.Cookie{Name: cookieName, Value: "", Path: Prefix, MaxAge: -1, HttpOnly: true,
		Secure: r.TLS != nil, SameSite: http.SameSiteStrictMode})
	http.Redirect(w, r, Prefix+"login", http.StatusSeeOther)
}

// safeNext keeps a post-login redirect inside the dashboard.
func safeNext(next string) string {
	if !strings.HasPrefix(next, Prefix) || strings.HasPrefix(next, "//") || strings.Contains(next, "\\") {
		return Prefix
	}
	return next
}

// page is what the layout needs; Data is the page's own view.
type page struct {
	Title  string
	Nav    string
	CSRF   string
	ACL    bool
	Next   string
	Error  string
	Notice string
	Status api.Status
	Data   any
}

// render writes a page, or only its main content when the live-update script
// asks for ?fragment=1.
func (h *Handler) render(w http.ResponseWriter, r *http.Request, code int, name string, p page) {
	p.CSRF = h.csrf(r)
	p.ACL = h.aclOn()
	if p.Status.Node == "" && name != "login" {
		p.Status = h.b.Status(r.Context())
	}
	tmpl := "layout.html"
	if r.URL.Query().Get("fragment") == "1" {
		tmpl = "main"
	}
	var b strings.Builder
	if err := h.pages[name].ExecuteTemplate(&b, tmpl, p); err != nil {
		h.log.Error("render failed", "page", name, "error", err)
		http.Error(w, "internal error: could not render the page", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_, _ = w.Write([]byte(b.String()))
}

var funcs = template.FuncMap{
	"clock": func(t time.Time) string {
		if t.IsZero() {
			return "—"
		}
		return t.UTC().Format("15:04")
	},
	"datetime": func(t time.Time) string {
		if t.IsZero() {
			return "—"
		}
		return t.UTC().Format("2006-01-02 15:04:05Z")
	},
	"iso": func(t time.Time) string { return t.UTC().Format(time.RFC3339) },
	"pct": func(v float64) string { return fmt.Sprintf("%.0f%%", v*100) },
	"num": trimFloat,
	"dur": func(d time.Duration) string {
		if d < time.Second {
			return d.Round(time.Millisecond).String()
		}
		return d.Round(time.Second).String()
	},
	"f1":  func(v float64) string { return fmt.Sprintf("%.1f", v) },
	"add": func(a, b float64) float64 { return a + b },
	"sub": func(a, b float64) float64 { return a - b },
	"mul": func(a, b float64) float64 { return a * b },
	// isTrue and isFalse tell an optional flag's three states apart.
	"isTrue":  func(b *bool) bool { return b != nil && *b },
	"isFalse": func(b *bool) bool { return b != nil && !*b },
}
