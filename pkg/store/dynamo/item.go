package dynamo

import (
	"errors"
	"math"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// item is one DynamoDB item being built or read.
type item map[string]types.AttributeValue

func (it item) setS(name, v string) {
	if v != "" {
		it[name] = &types.AttributeValueMemberS{Value: v}
	}
}

func (it item) setInt(name string, v int64) {
	it[name] = &types.AttributeValueMemberN{Value: strconv.FormatInt(v, 10)}
}

// setTime stores t in Unix nanoseconds; the zero time is left out.
func (it item) setTime(name string, t time.Time) {
	if !t.IsZero() {
		it.setInt(name, unixNano(t))
	}
}

// setExpiry stores the precise expiresAt and the ttl DynamoDB sweeps on.
func (it item) setExpiry(t time.Time) {
	if !t.IsZero() {
		it.setTime(attrExpiresAt, t)
		it.setInt(TTLAttribute, ttlSeconds(t))
	}
}

func (it item) s(name string) string {
	if v, ok := it[name].(*types.AttributeValueMemberS); ok {
		return v.Value
	}
	return ""
}

func (it item) int(name string) (int64, bool) {
	v, ok := it[name].(*types.AttributeValueMemberN)
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseInt(v.Value, 10, 64)
	return n, err == nil
}

func (it item) bool(name string) bool {
	v, ok := it[name].(*types.AttributeValueMemberBOOL)
	return ok && v.Value
}

// time reads a time stored by setTime; absent is the zero time.
func (it item) time(name string) time.Time {
	n, ok := it.int(name)
	if !ok {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}

// live reports whether the item exists and has not expired at now. An item
// without expiresAt is treated as expired, as the zero time would be.
func (it item) live(now time.Time) bool {
	return len(it) > 0 && now.Before(it.time(attrExpiresAt))
}

// unixNano is t in Unix nanoseconds, clamped to int64 (years 1678-2262).
func unixNano(t time.Time) int64 {
	switch {
	case t.Before(time.Unix(0, math.MinInt64)):
		return math.MinInt64
	case t.After(time.Unix(0, math.MaxInt64)):
		return math.MaxInt64
	}
	return t.UnixNano()
}

// ttlSeconds is t in Unix seconds rounded up, so that DynamoDB never
// deletes an item before its precise expiry.
func ttlSeconds(t time.Time) int64 {
	sec := t.Unix()
	if t.Nanosecond() > 0 {
		sec++
	}
	return sec
}

func sv(v string) types.AttributeValue { return &types.AttributeValueMemberS{Value: v} }

func nv(v int64) types.AttributeValue {
	return &types.AttributeValueMemberN{Value: strconv.FormatInt(v, 10)}
}

func boolv(v bool) types.AttributeValue { return &types.AttributeValueMemberBOOL{Value: v} }

func conditionFailed(err error) bool {
	var ccf *types.ConditionalCheckFailedException
	return errors.As(err, &ccf)
}
