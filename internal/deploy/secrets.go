package deploy

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"

	"golang.org/x/crypto/bcrypt"
)

// Credentials are the secrets a new installation gets. The plaintext is shown to
// the user once; the host keeps only the hashes.
type Credentials struct {
	Token       string // bearer token with write, read and admin scopes
	TokenSHA256 string // hex SHA-256 of Token, as the auth config stores it
	User        string
	Password    string
	Bcrypt      string
}

// NewCredentials draws a token and a password from crypto/rand.
func NewCredentials(user string) (Credentials, error) {
	tok, err := randomString("vsp_", 32)
	if err != nil {
		return Credentials{}, err
	}
	pw, err := randomString("", 18)
	if err != nil {
		return Credentials{}, err
	}
	hash, err := bcrypt.GenerateFromPassword([]byte(pw), bcrypt.DefaultCost)
	if err != nil {
		return Credentials{}, fmt.Errorf("hash password: %w", err)
	}
	sum := sha256.Sum256([]byte(tok))
	return Credentials{
		Token: tok, TokenSHA256: hex.EncodeToString(sum[:]),
		User: user, Password: pw, Bcrypt: string(hash),
	}, nil
}

func randomString(prefix string, n int) (string, error) {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("read random: %w", err)
	}
	return prefix + hex.EncodeToString(b), nil
}
