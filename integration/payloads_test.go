package integration

import (
	"encoding/base64"
	"encoding/json"
	"regexp"
)

// searchable turns a history event's JSON into text where every payload's "data" (base64) is
// replaced by its decoded bytes, so a secret inside a payload is visible to a search and base64
// noise cannot look like one.
func searchable(v any) string {
	var walk func(any) any
	walk = func(v any) any {
		switch x := v.(type) {
		case map[string]any:
			for k, val := range x {
				if s, ok := val.(string); ok && (k == "data" || k == "type" || k == "encoding") {
					if d, err := base64.StdEncoding.DecodeString(s); err == nil {
						x[k] = string(d)
						continue
					}
				}
				x[k] = walk(val)
			}
		case []any:
			for i, val := range x {
				x[i] = walk(val)
			}
		}
		return v
	}
	b, _ := json.Marshal(walk(v))
	return string(b)
}

// jwtRE matches a bearer token (JWT: base64url header.payload.signature).
var jwtRE = regexp.MustCompile(`eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.`)
