package redact

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestFileErrorHidesATokenStartingWithASlash: a base64 token (a refresh
// token, a password) given in place of its file's path starts with "/" one
// time in 64, and an absolute path was repeated as it was. A path whose
// directory exists is a path, and shown.
func TestFileErrorHidesATokenStartingWithASlash(t *testing.T) {
	for _, token := range []string{"/opaqueRefreshToken0123456789+/=", "/opaqueRefreshToken0123456789AbCdEf"} {
		_, err := os.ReadFile(token)
		if got := FileError(token, err).Error(); strings.Contains(got, "opaqueRefresh") {
			t.Errorf("the token shows in %q", got)
		}
	}
	missing := filepath.Join(t.TempDir(), "token")
	_, err := os.ReadFile(missing)
	if got := FileError(missing, err).Error(); !strings.Contains(got, missing) {
		t.Errorf("%q does not name the missing file %s", got, missing)
	}
}
