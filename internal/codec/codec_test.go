package codec

import (
	"bytes"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	commonpb "go.temporal.io/api/common/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/sdk/converter"
	"google.golang.org/protobuf/encoding/protojson"
)

type tenantInput struct {
	OrgURL      string `json:"orgUrl"`
	DisplayName string `json:"displayName"`
}

var input = tenantInput{OrgURL: "https://contoso.crm.dynamics.com", DisplayName: "Contoso Ltd"}

func key(t *testing.T, id string) Key {
	t.Helper()
	k, err := GenerateKey(id)
	require.NoError(t, err)
	return k
}

func keys(t *testing.T, ks ...Key) *Keys {
	t.Helper()
	k, err := NewKeys(ks...)
	require.NoError(t, err)
	return k
}

func dc(t *testing.T, k *Keys) converter.DataConverter {
	t.Helper()
	d, err := DataConverter(k)
	require.NoError(t, err)
	return d
}

func TestRoundTripHidesThePlaintext(t *testing.T) {
	d := dc(t, keys(t, key(t, "2026-11")))
	p, err := d.ToPayload(input)
	require.NoError(t, err)
	require.Equal(t, EncodingEncrypted, string(p.Metadata[MetadataEncoding]))
	require.Equal(t, "2026-11", string(p.Metadata[MetadataKeyID]))
	require.Len(t, p.Metadata, 2, "the inner encoding (json/plain) is sealed too")
	require.NotContains(t, string(p.Data), "contoso")
	require.NotContains(t, string(p.Data), "json/plain")
	var back tenantInput
	require.NoError(t, d.FromPayload(p, &back))
	require.Equal(t, input, back)

	// Two encryptions of the same value differ (a fresh nonce each time).
	p2, err := d.ToPayload(input)
	require.NoError(t, err)
	require.NotEqual(t, p.Data, p2.Data)
}

func TestRotationOldKeyDecryptsNewKeyEncrypts(t *testing.T) {
	old, newer := key(t, "2026-06"), key(t, "2026-11")
	before := dc(t, keys(t, old))
	p, err := before.ToPayload(input)
	require.NoError(t, err)

	after := dc(t, keys(t, newer, old)) // the new key listed first: it encrypts
	var back tenantInput
	require.NoError(t, after.FromPayload(p, &back), "a payload of the old key still decrypts")
	require.Equal(t, input, back)
	p2, err := after.ToPayload(input)
	require.NoError(t, err)
	require.Equal(t, "2026-11", string(p2.Metadata[MetadataKeyID]), "the first-listed key encrypts")

	// The old key alone cannot read what the new one wrote, and says which key is missing.
	err = before.FromPayload(p2, &back)
	var missing *MissingKeyError
	require.ErrorAs(t, err, &missing)
	require.Equal(t, "2026-11", missing.KeyID)
	require.Contains(t, err.Error(), `key "2026-11", which this process does not have (it has keys 2026-06)`)
	require.Contains(t, err.Error(), "add \"2026-11\" back to the payload keys")
}

func TestNoKeysEncryptsNothingAndNamesTheMissingKey(t *testing.T) {
	plain := dc(t, nil)
	p, err := plain.ToPayload(input)
	require.NoError(t, err)
	require.Equal(t, "json/plain", string(p.Metadata[MetadataEncoding]), "without keys nothing is encrypted")

	// Plaintext payloads (histories from before encryption) decode with keys too.
	var back tenantInput
	require.NoError(t, dc(t, keys(t, key(t, "k1"))).FromPayload(p, &back))
	require.Equal(t, input, back)

	enc, err := dc(t, keys(t, key(t, "k1"))).ToPayload(input)
	require.NoError(t, err)
	err = plain.FromPayload(enc, &back)
	require.ErrorContains(t, err, `key "k1", which this process does not have (it has no payload keys at all)`)
}

func TestTamperedCiphertextFails(t *testing.T) {
	k := keys(t, key(t, "k1"))
	c, err := New(k)
	require.NoError(t, err)
	ps, err := converter.GetDefaultDataConverter().ToPayloads(input)
	require.NoError(t, err)
	enc, err := c.Encode(ps.Payloads)
	require.NoError(t, err)
	enc[0].Data[len(enc[0].Data)-1] ^= 1
	_, err = c.Decode(enc)
	require.ErrorContains(t, err, `decrypt payload with key "k1": cipher: message authentication failed: the payload was altered`)

	// The same ID with another secret: authentication fails too, never garbage.
	other, err := New(keys(t, Key{ID: "k1", Secret: key(t, "x").Secret}))
	require.NoError(t, err)
	enc, err = c.Encode(ps.Payloads)
	require.NoError(t, err)
	_, err = other.Decode(enc)
	require.ErrorContains(t, err, "message authentication failed")

	enc[0].Data = enc[0].Data[:5]
	_, err = c.Decode(enc)
	require.ErrorContains(t, err, "too short")
}

func TestParseNamesFileAndLine(t *testing.T) {
	a, b := key(t, "2026-11"), key(t, "2026-06")
	k, err := Parse("keys", "# active first\n"+Format(a, b))
	require.NoError(t, err)
	require.Equal(t, []string{"2026-11", "2026-06"}, k.IDs())
	require.Equal(t, "2026-11", k.ActiveID())

	k, err = Parse("$W365_PAYLOAD_KEYS", strings.ReplaceAll(strings.TrimSpace(Format(a, b)), "\n", ","))
	require.NoError(t, err)
	require.Equal(t, []string{"2026-11", "2026-06"}, k.IDs(), "comma-separated, as in an environment variable")

	for text, want := range map[string]string{
		"\n\nnot-a-key\n":         "keys:3: a payload key is written id=base64",
		"k1=@@@\n":                `keys:1: payload key "k1" is not standard base64`,
		"k1=" + "c2hvcnQ=" + "\n": `keys: payload key "k1": 5 bytes, AES-256 needs 32`,
		Format(a) + Format(a):     `keys: payload key "2026-11" is listed twice`,
		"bad id=" + Format(a)[8:]: `keys: payload key ID "bad id"`,
		"# only a comment\n":      "keys: no payload key",
	} {
		_, err := Parse("keys", text)
		require.ErrorContains(t, err, want, "%q", text)
	}
}

func TestKeysPrintWithoutSecrets(t *testing.T) {
	k := key(t, "2026-11")
	ks := keys(t, k)
	secret := strings.TrimSpace(strings.SplitN(Format(k), "=", 2)[1])
	for _, s := range []string{fmt.Sprint(k), fmt.Sprintf("%v %+v %#v", k, k, k), fmt.Sprint(ks), fmt.Sprintf("%+v %#v", ks, ks)} {
		require.Contains(t, s, "2026-11")
		require.NotContains(t, s, secret)
		require.NotContains(t, s, fmt.Sprint(k.Secret[:4]))
	}
}

func TestLoadFromFileOrEnvironment(t *testing.T) {
	a := key(t, "from-file")
	file := filepath.Join(t.TempDir(), "payload-keys")
	require.NoError(t, os.WriteFile(file, []byte(Format(a)), 0o600))
	t.Setenv(DefaultKeysEnv, "")
	k, err := Load(file, "")
	require.NoError(t, err)
	require.Equal(t, "from-file", k.ActiveID())

	t.Setenv("MY_KEYS", strings.TrimSpace(Format(key(t, "from-env"))))
	k, err = Load("", "MY_KEYS")
	require.NoError(t, err)
	require.Equal(t, "from-env", k.ActiveID())

	k, err = Load("", "")
	require.NoError(t, err)
	require.Nil(t, k, "nothing configured: no encryption")
	t.Setenv(DefaultKeysEnv, strings.TrimSpace(Format(key(t, "default-env"))))
	k, err = Load("", "")
	require.NoError(t, err)
	require.Equal(t, "default-env", k.ActiveID())

	_, err = Load("", "UNSET_KEYS_VARIABLE")
	require.ErrorContains(t, err, "environment variable UNSET_KEYS_VARIABLE (codec.keysEnv) is empty")
	_, err = Load(filepath.Join(t.TempDir(), "missing"), "")
	require.ErrorContains(t, err, "read payload keys file")
}

// codecServer posts payloads as the Web UI does and returns the response.
func post(t *testing.T, h http.Handler, path string, ps []*commonpb.Payload, hdr map[string]string) *httptest.ResponseRecorder {
	t.Helper()
	body, err := protojson.Marshal(&commonpb.Payloads{Payloads: ps})
	require.NoError(t, err)
	req := httptest.NewRequest(http.MethodPost, path, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Namespace", "default")
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

func payloadsOf(t *testing.T, rec *httptest.ResponseRecorder) []*commonpb.Payload {
	t.Helper()
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	var out commonpb.Payloads
	require.NoError(t, protojson.Unmarshal(rec.Body.Bytes(), &out))
	return out.Payloads
}

func TestCodecServerEncodesAndDecodes(t *testing.T) {
	c, err := New(keys(t, key(t, "k1")))
	require.NoError(t, err)
	h := Handler(c, ServerOptions{Origins: []string{"http://localhost:8080"}})
	ps, err := converter.GetDefaultDataConverter().ToPayloads(input)
	require.NoError(t, err)

	enc := payloadsOf(t, post(t, h, "/default/encode", ps.Payloads, nil))
	require.True(t, Encrypted(enc[0]))
	require.NotContains(t, string(enc[0].Data), "contoso")
	dec := payloadsOf(t, post(t, h, "/default/decode", enc, nil))
	var back tenantInput
	require.NoError(t, converter.GetDefaultDataConverter().FromPayload(dec[0], &back))
	require.Equal(t, input, back)

	// Mounted under a prefix, as on the worker's listener.
	mux := http.NewServeMux()
	mux.Handle("/codec/", http.StripPrefix("/codec", h))
	dec = payloadsOf(t, post(t, mux, "/codec/default/decode", enc, nil))
	require.Contains(t, string(dec[0].Data), "contoso.crm.dynamics.com")

	// An unknown key ID reaches the caller (the Web UI shows it) with what to do.
	other, err := New(keys(t, key(t, "k2")))
	require.NoError(t, err)
	rec := post(t, Handler(other, ServerOptions{}), "/default/decode", enc, nil)
	require.Equal(t, http.StatusBadRequest, rec.Code)
	require.Contains(t, rec.Body.String(), `key "k1", which this process does not have`)

	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/default/decode", nil))
	require.Equal(t, http.StatusMethodNotAllowed, rec.Code)
	rec = post(t, h, "/default/other", enc, nil)
	require.Equal(t, http.StatusNotFound, rec.Code)
}

func TestCodecServerCORS(t *testing.T) {
	c, err := New(keys(t, key(t, "k1")))
	require.NoError(t, err)
	h := Handler(c, ServerOptions{Origins: []string{"http://localhost:8080/"}, Token: "s3cret"})

	// The Web UI's preflight: no token needed, the headers it sends allowed.
	req := httptest.NewRequest(http.MethodOptions, "/default/decode", nil)
	req.Header.Set("Origin", "http://localhost:8080")
	req.Header.Set("Access-Control-Request-Method", "POST")
	req.Header.Set("Access-Control-Request-Headers", "authorization,content-type,x-namespace")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	require.Equal(t, http.StatusNoContent, rec.Code)
	require.Equal(t, "http://localhost:8080", rec.Header().Get("Access-Control-Allow-Origin"))
	require.Equal(t, "true", rec.Header().Get("Access-Control-Allow-Credentials"))
	allowed := strings.ToLower(rec.Header().Get("Access-Control-Allow-Headers"))
	for _, hd := range []string{"authorization", "content-type", "x-namespace"} {
		require.Contains(t, allowed, hd)
	}
	require.Contains(t, rec.Header().Get("Access-Control-Allow-Methods"), "POST")

	// Another origin is refused, preflight and request alike.
	req.Header.Set("Origin", "https://evil.example")
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	require.Equal(t, http.StatusForbidden, rec.Code)
	require.Empty(t, rec.Header().Get("Access-Control-Allow-Origin"))
	ps, err := converter.GetDefaultDataConverter().ToPayloads(input)
	require.NoError(t, err)
	rec = post(t, h, "/default/encode", ps.Payloads, map[string]string{"Origin": "https://evil.example", "Authorization": "Bearer s3cret"})
	require.Equal(t, http.StatusForbidden, rec.Code)

	// The bearer token: missing or wrong is 401, right is 200 with the CORS headers.
	rec = post(t, h, "/default/encode", ps.Payloads, map[string]string{"Origin": "http://localhost:8080"})
	require.Equal(t, http.StatusUnauthorized, rec.Code)
	require.Contains(t, rec.Header().Get("WWW-Authenticate"), "Bearer")
	rec = post(t, h, "/default/encode", ps.Payloads, map[string]string{"Authorization": "Bearer wrong"})
	require.Equal(t, http.StatusUnauthorized, rec.Code)
	rec = post(t, h, "/default/encode", ps.Payloads, map[string]string{"Origin": "http://localhost:8080", "Authorization": "Bearer s3cret"})
	require.Len(t, payloadsOf(t, rec), 1)
	require.Equal(t, "http://localhost:8080", rec.Header().Get("Access-Control-Allow-Origin"))

	// Bodies are bounded.
	small := Handler(c, ServerOptions{MaxBody: 16})
	rec = post(t, small, "/default/encode", ps.Payloads, nil)
	require.Equal(t, http.StatusBadRequest, rec.Code)
}

func TestDecodeInSkipsSearchAttributes(t *testing.T) {
	c, err := New(keys(t, key(t, "k1")))
	require.NoError(t, err)
	ps, err := converter.GetDefaultDataConverter().ToPayloads(input)
	require.NoError(t, err)
	enc, err := c.Encode(ps.Payloads)
	require.NoError(t, err)
	// An encrypted payload where a search attribute goes shows whether it is visited.
	asAttr, err := c.Encode(ps.Payloads)
	require.NoError(t, err)
	ev := &historypb.WorkflowExecutionStartedEventAttributes{
		Input:            &commonpb.Payloads{Payloads: enc},
		SearchAttributes: &commonpb.SearchAttributes{IndexedFields: map[string]*commonpb.Payload{"WorkTenantName": asAttr[0]}},
	}
	require.NoError(t, DecodeIn(t.Context(), c, ev))
	require.Contains(t, string(ev.Input.Payloads[0].Data), "contoso.crm.dynamics.com")
	require.True(t, Encrypted(ev.SearchAttributes.IndexedFields["WorkTenantName"]), "search attributes are left alone")
}
