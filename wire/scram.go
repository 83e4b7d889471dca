package wire

import (
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
)

// SCRAM-SHA-256 (RFC 5802, RFC 7677) as Postgres speaks it: the user name in
// the SCRAM message is ignored in favour of the startup packet's, and only
// the mechanism without channel binding is offered. SCRAM-SHA-256-PLUS would
// need the tls-server-end-point hash of our certificate; without it, clients
// use plain SCRAM unless they insist on channel_binding=require.

const (
	scramMechanism  = "SCRAM-SHA-256"
	scramIterations = 4096 // Postgres' default scram_iterations
	scramNonceBytes = 18
)

// errPasswordMismatch is the only SCRAM failure that is the user's fault
// rather than the client library's: it becomes 28P01.
var errPasswordMismatch = errors.New("password does not match")

// scramVerifier is what Postgres keeps in pg_authid for a SCRAM password.
// It is computed once per Server, so the PBKDF2 cost is not paid (or
// measurable) per connection.
type scramVerifier struct {
	salt      []byte
	storedKey []byte
	serverKey []byte
}

func newSCRAMVerifier(password string) (*scramVerifier, error) {
	salt := make([]byte, 16)
	if _, err := rand.Read(salt); err != nil {
		return nil, err
	}
	salted, err := pbkdf2.Key(sha256.New, password, salt, scramIterations, sha256.Size)
	if err != nil {
		return nil, fmt.Errorf("scram: derive key: %w", err)
	}
	clientKey := hmacSHA256(salted, "Client Key")
	stored := sha256.Sum256(clientKey)
	return &scramVerifier{
		salt:      salt,
		storedKey: stored[:],
		serverKey: hmacSHA256(salted, "Server Key"),
	}, nil
}

func hmacSHA256(key []byte, msg string) []byte {
	h := hmac.New(sha256.New, key)
	h.Write([]byte(msg))
	return h.Sum(nil)
}

// scramExchange is the server side of one authentication exchange.
type scramExchange struct {
	v               *scramVerifier
	gs2Header       string
	clientFirstBare string
	serverFirst     string
	nonce           string
}

// scramProtocolError is a malformed exchange: the client library is broken
// or is not speaking the mechanism we offered.
func scramProtocolError(detail string) error {
	e := fatalf(codeProtocolViolation, "malformed SCRAM message")
	e.Detail = detail
	return e
}

// handleClientFirst takes client-first-message and returns server-first-message.
func (x *scramExchange) handleClientFirst(msg string) (string, error) {
	// gs2-header: cbind-flag "," [authzid] ","
	flag, rest, ok := strings.Cut(msg, ",")
	if !ok {
		return "", scramProtocolError("missing GS2 header")
	}
	switch {
	case flag == "n", flag == "y":
		// "y" means the client could bind but believes we cannot: true.
	case strings.HasPrefix(flag, "p="):
		return "", scramProtocolError("The client selected SCRAM-SHA-256 without channel binding, but the SCRAM message includes channel binding data.")
	default:
		return "", scramProtocolError(fmt.Sprintf("unexpected channel-binding flag %q", flag))
	}
	authzid, bare, ok := strings.Cut(rest, ",")
	if !ok {
		return "", scramProtocolError("missing GS2 header")
	}
	if authzid != "" {
		e := fatalf(codeFeatureNotSupported, "client uses authorization identity, but it is not supported")
		return "", e
	}
	x.gs2Header = flag + "," + authzid + ","
	x.clientFirstBare = bare

	attrs := strings.Split(bare, ",")
	if len(attrs) < 2 || !strings.HasPrefix(attrs[0], "n=") || !strings.HasPrefix(attrs[1], "r=") {
		// "m=" (mandatory extension) lands here too: we know none.
		return "", scramProtocolError("expected username and nonce attributes")
	}
	clientNonce := attrs[1][2:]
	if clientNonce == "" || !printableNonce(clientNonce) {
		return "", scramProtocolError("invalid client nonce")
	}
	serverNonce := make([]byte, scramNonceBytes)
	if _, err := rand.Read(serverNonce); err != nil {
		return "", err
	}
	x.nonce = clientNonce + base64.RawStdEncoding.EncodeToString(serverNonce)
	x.serverFirst = fmt.Sprintf("r=%s,s=%s,i=%d", x.nonce, base64.StdEncoding.EncodeToString(x.v.salt), scramIterations)
	return x.serverFirst, nil
}

func printableNonce(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x21 || s[i] > 0x7e || s[i] == ',' {
			return false
		}
	}
	return true
}

// handleClientFinal checks client-final-message and returns
// server-final-message, or errPasswordMismatch.
func (x *scramExchange) handleClientFinal(msg string) (string, error) {
	withoutProof, proofAttr, ok := cutLast(msg, ",p=")
	if !ok {
		return "", scramProtocolError("missing client proof")
	}
	attrs := strings.Split(withoutProof, ",")
	if len(attrs) < 2 || !strings.HasPrefix(attrs[0], "c=") || !strings.HasPrefix(attrs[1], "r=") {
		return "", scramProtocolError("expected channel-binding and nonce attributes")
	}
	cbind, err := base64.StdEncoding.DecodeString(attrs[0][2:])
	if err != nil || string(cbind) != x.gs2Header {
		return "", scramProtocolError("unexpected SCRAM channel-binding attribute in client-final-message")
	}
	if attrs[1][2:] != x.nonce {
		return "", scramProtocolError("nonce does not match")
	}
	proof, err := base64.StdEncoding.DecodeString(proofAttr)
	if err != nil || len(proof) != sha256.Size {
		return "", scramProtocolError("malformed proof in client-final-message")
	}

	authMessage := x.clientFirstBare + "," + x.serverFirst + "," + withoutProof
	clientSignature := hmacSHA256(x.v.storedKey, authMessage)
	clientKey := make([]byte, sha256.Size)
	subtle.XORBytes(clientKey, proof, clientSignature)
	stored := sha256.Sum256(clientKey)
	if !hmac.Equal(stored[:], x.v.storedKey) {
		return "", errPasswordMismatch
	}
	return "v=" + base64.StdEncoding.EncodeToString(hmacSHA256(x.v.serverKey, authMessage)), nil
}

func cutLast(s, sep string) (before, after string, found bool) {
	i := strings.LastIndex(s, sep)
	if i < 0 {
		return s, "", false
	}
	return s[:i], s[i+len(sep):], true
}
