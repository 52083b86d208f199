package codec

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"fmt"
	"strings"

	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/converter"
	"google.golang.org/protobuf/proto"
)

// Metadata of an encrypted payload: the same names as Temporal's samples and feature tests, so
// other tools that know them can read ours.
const (
	MetadataEncoding  = converter.MetadataEncoding // "encoding"
	EncodingEncrypted = "binary/encrypted"
	MetadataKeyID     = "encryption-key-id"
)

const nonceSize = 12

// Codec is a converter.PayloadCodec: Encode seals each payload (the whole inner payload,
// metadata included) with the active key; Decode opens it with the key its metadata names.
// Payloads that are not encrypted pass through Decode unchanged, so histories written before
// encryption was turned on stay readable.
type Codec struct {
	keys  *Keys
	aeads map[string]cipher.AEAD
}

// New makes the codec of keys. Without keys (nil) it encrypts nothing and refuses encrypted
// payloads with an error that says which key is missing, instead of a JSON decoding error.
func New(keys *Keys) (*Codec, error) {
	c := &Codec{keys: keys, aeads: map[string]cipher.AEAD{}}
	if keys == nil {
		return c, nil
	}
	for _, k := range keys.list {
		block, err := aes.NewCipher(k.Secret)
		if err != nil {
			return nil, fmt.Errorf("payload key %q: %w", k.ID, err)
		}
		aead, err := cipher.NewGCM(block)
		if err != nil {
			return nil, fmt.Errorf("payload key %q: %w", k.ID, err)
		}
		c.aeads[k.ID] = aead
	}
	return c, nil
}

// DataConverter is the SDK's default converter with the codec of keys around it. With nil keys
// nothing is encrypted, and an encrypted payload met is refused with the missing key's ID.
func DataConverter(keys *Keys) (converter.DataConverter, error) {
	c, err := New(keys)
	if err != nil {
		return nil, err
	}
	return converter.NewCodecDataConverter(converter.GetDefaultDataConverter(), c), nil
}

// Encode encrypts every payload with the active key; one already encrypted is left as it is.
func (c *Codec) Encode(payloads []*commonpb.Payload) ([]*commonpb.Payload, error) {
	if c.keys == nil {
		return payloads, nil
	}
	id := c.keys.ActiveID()
	aead := c.aeads[id]
	out := make([]*commonpb.Payload, len(payloads))
	for i, p := range payloads {
		if Encrypted(p) {
			out[i] = p
			continue
		}
		plain, err := proto.Marshal(p)
		if err != nil {
			return nil, fmt.Errorf("encrypt payload: marshal: %w", err)
		}
		nonce := make([]byte, nonceSize, nonceSize+len(plain)+aead.Overhead())
		if _, err := rand.Read(nonce); err != nil {
			return nil, fmt.Errorf("encrypt payload: nonce: %w", err)
		}
		out[i] = &commonpb.Payload{
			Metadata: map[string][]byte{MetadataEncoding: []byte(EncodingEncrypted), MetadataKeyID: []byte(id)},
			Data:     aead.Seal(nonce, nonce, plain, nil),
		}
	}
	return out, nil
}

// Decode decrypts every encrypted payload with the key its metadata names.
func (c *Codec) Decode(payloads []*commonpb.Payload) ([]*commonpb.Payload, error) {
	out := make([]*commonpb.Payload, len(payloads))
	for i, p := range payloads {
		if !Encrypted(p) {
			out[i] = p
			continue
		}
		id := string(p.GetMetadata()[MetadataKeyID])
		aead, ok := c.aeads[id]
		if !ok {
			var known []string
			if c.keys != nil {
				known = c.keys.IDs()
			}
			return nil, &MissingKeyError{KeyID: id, Known: known}
		}
		data := p.GetData()
		if len(data) < nonceSize+aead.Overhead() {
			return nil, fmt.Errorf("decrypt payload with key %q: %d bytes is too short to be an AES-GCM payload: it was cut or altered", id, len(data))
		}
		plain, err := aead.Open(nil, data[:nonceSize], data[nonceSize:], nil)
		if err != nil {
			return nil, fmt.Errorf("decrypt payload with key %q: %w: the payload was altered, or key %q is not the key that encrypted it (check the key file holds the right secret for this ID)", id, err, id)
		}
		inner := &commonpb.Payload{}
		if err := proto.Unmarshal(plain, inner); err != nil {
			return nil, fmt.Errorf("decrypt payload with key %q: the plaintext is not a Temporal payload: %w", id, err)
		}
		out[i] = inner
	}
	return out, nil
}

// Encrypted reports whether a payload was sealed by this codec.
func Encrypted(p *commonpb.Payload) bool {
	return string(p.GetMetadata()[MetadataEncoding]) == EncodingEncrypted
}

// MissingKeyError is a payload encrypted with a key this process does not have.
type MissingKeyError struct {
	KeyID string
	Known []string
}

func (e *MissingKeyError) Error() string {
	known := "no payload keys at all"
	if len(e.Known) > 0 {
		known = "keys " + strings.Join(e.Known, ", ")
	}
	if e.KeyID == "" {
		return fmt.Sprintf("payload is encrypted but names no key (metadata %q is missing); this process has %s: the payload was written by another tool or altered", MetadataKeyID, known)
	}
	return fmt.Sprintf("payload is encrypted with key %q, which this process does not have (it has %s): add %q back to the payload keys (codec.keysFile, codec.keysEnv or %s; the starter: --payload-keys-file) — a key may be retired only once no history still holds payloads it encrypted", e.KeyID, known, e.KeyID, DefaultKeysEnv)
}
