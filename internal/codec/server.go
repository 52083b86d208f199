package codec

import (
	"crypto/subtle"
	"net/http"
	"slices"
	"strings"

	"go.temporal.io/sdk/converter"
)

// ServerOptions shape the codec endpoint.
type ServerOptions struct {
	// Origins may call the endpoint from a browser (the Web UI's origin, e.g.
	// http://localhost:8080); "*" allows any. Without origins, browsers cannot call it.
	Origins []string
	// Token, when set, is required as "Authorization: Bearer <token>" on every POST.
	Token string
	// MaxBody bounds a request body (default 4 MiB, the size of the largest Temporal payload).
	MaxBody int64
}

// Handler serves Temporal's remote codec protocol for codec: POST …/{namespace}/encode and
// …/{namespace}/decode with {"payloads": [...]} (Payloads as protobuf JSON), as the Web UI
// (TEMPORAL_CODEC_ENDPOINT) and the temporal CLI (--codec-endpoint) call it. It answers CORS
// preflights for the allowed origins, with the Authorization and X-Namespace headers the Web
// UI sends. The protocol itself is the SDK's converter.NewPayloadCodecHTTPHandler.
func Handler(codec converter.PayloadCodec, o ServerOptions) http.Handler {
	if o.MaxBody <= 0 {
		o.MaxBody = 4 << 20
	}
	inner := converter.NewPayloadCodecHTTPHandler(codec)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		origin := r.Header.Get("Origin")
		if origin != "" {
			if !o.allows(origin) {
				http.Error(w, "origin "+origin+" may not call this codec endpoint: add it to the codec server's origins", http.StatusForbidden)
				return
			}
			h := w.Header()
			h.Set("Access-Control-Allow-Origin", origin)
			h.Set("Access-Control-Allow-Credentials", "true")
			h.Add("Vary", "Origin")
		}
		if r.Method == http.MethodOptions {
			if origin == "" {
				http.Error(w, "a preflight needs an Origin", http.StatusBadRequest)
				return
			}
			h := w.Header()
			h.Set("Access-Control-Allow-Methods", "POST, OPTIONS")
			h.Set("Access-Control-Allow-Headers", "Authorization, Content-Type, X-Namespace")
			h.Set("Access-Control-Max-Age", "600")
			w.WriteHeader(http.StatusNoContent)
			return
		}
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", "POST, OPTIONS")
			http.Error(w, "use POST …/{namespace}/encode or …/{namespace}/decode", http.StatusMethodNotAllowed)
			return
		}
		if o.Token != "" && !bearer(r, o.Token) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="codec"`)
			http.Error(w, "missing or wrong bearer token", http.StatusUnauthorized)
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, o.MaxBody)
		inner.ServeHTTP(w, r)
	})
}

func (o ServerOptions) allows(origin string) bool {
	return slices.Contains(o.Origins, "*") || slices.ContainsFunc(o.Origins, func(s string) bool {
		return strings.EqualFold(strings.TrimSuffix(s, "/"), origin)
	})
}

func bearer(r *http.Request, token string) bool {
	scheme, got, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	return ok && strings.EqualFold(scheme, "Bearer") && subtle.ConstantTimeCompare([]byte(strings.TrimSpace(got)), []byte(token)) == 1
}
