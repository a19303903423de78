package uploader

import "testing"

// EncryptedWithCheapKDF is Encrypted with a passphrase key whose key
// derivation is cheap, for the conformance run in package uploader_test
// (the production Argon2id parameters would cost seconds per case).
func EncryptedWithCheapKDF(t *testing.T, r Replica, passphrase string) Replica {
	return newTestEncrypted(t, r, cheapKDF, parseKey(t, "passphrase: "+passphrase))
}

// TestThreshold is the multipart threshold the S3 conformance run uses.
const TestThreshold = testThreshold
