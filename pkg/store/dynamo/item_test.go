package dynamo

import (
	"testing"
	"time"
)

func TestTimeEncoding(t *testing.T) {
	for _, tt := range []struct {
		give    time.Time
		wantTTL int64
	}{
		{time.Unix(1_800_000_000, 0), 1_800_000_000},
		{time.Unix(1_800_000_000, 1), 1_800_000_001},
		{time.Unix(1_800_000_000, 999_999_999), 1_800_000_001},
	} {
		if got := ttlSeconds(tt.give); got != tt.wantTTL {
			t.Errorf("ttlSeconds(%v) = %d, want %d", tt.give, got, tt.wantTTL)
		}
		it := item{}
		it.setExpiry(tt.give)
		if got := it.time(attrExpiresAt); !got.Equal(tt.give) {
			t.Errorf("expiresAt round trip of %v = %v", tt.give, got)
		}
	}
	it := item{}
	it.setExpiry(time.Time{})
	if len(it) != 0 {
		t.Errorf("a zero expiry was stored as %v", it)
	}
	if it.live(time.Now()) || it.time(attrExpiresAt) != (time.Time{}) {
		t.Error("an item without expiresAt counts as live")
	}
}
