package dynamo

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/lambdatunnel/lambdatunnel/pkg/protocol"
	"github.com/lambdatunnel/lambdatunnel/pkg/store"
)

// maxChunkBytes bounds the body and headers of one stored chunk, well under
// DynamoDB's 400 KB item limit; a chunk that fits in a WebSocket message
// (128 KB) is far below it.
const maxChunkBytes = 300 * 1024

func (s *Store) PutChunk(ctx context.Context, c *protocol.Response, expires time.Time) error {
	it := item{}
	it.setS(attrRequestID, c.RequestID)
	it.setInt(attrSeq, int64(c.Seq))
	it[attrFinal] = boolv(c.Final)
	if c.StatusCode != 0 {
		it.setInt(attrStatusCode, int64(c.StatusCode))
	}
	size := len(c.Body)
	if len(c.Headers) > 0 {
		h, err := json.Marshal(c.Headers)
		if err != nil {
			return fmt.Errorf("response %s chunk %d: headers: %w", c.RequestID, c.Seq, err)
		}
		it.setS(attrHeaders, string(h))
		size += len(h)
	}
	if size > maxChunkBytes {
		return fmt.Errorf("response %s chunk %d: %d bytes of body and headers, over the %d a stored chunk may hold: %w",
			c.RequestID, c.Seq, size, maxChunkBytes, protocol.ErrTooLarge)
	}
	it.setS(attrBody, c.Body) // the base64 text as it came, never decoded here
	it.setExpiry(expires)
	_, err := s.db.PutItem(ctx, &dynamodb.PutItemInput{TableName: &s.tables.Responses, Item: it})
	if err != nil {
		return fmt.Errorf("put response %s chunk %d: %w", c.RequestID, c.Seq, err)
	}
	return nil
}

// WaitResponse polls the responses table with a strongly consistent Query,
// first at once and then at intervals growing from pollMin by half to
// pollMax; each poll reads only from the lowest missing chunk on. It checks
// that the connection still exists once per goneCheck of waiting, the first
// time goneCheck after it starts: the caller has just posted the request to
// the connection, which fails when the connection is gone, so an immediate
// check would only add a read to every request.
func (s *Store) WaitResponse(ctx context.Context, connectionID, requestID string) ([]*protocol.Response, error) {
	col := collector{chunks: make(map[int]storedChunk), final: -1}
	interval := s.pollMin
	nextCheck := time.Now().Add(s.goneCheck)
	timer := time.NewTimer(interval)
	timer.Stop()
	defer timer.Stop()
	for {
		if err := s.poll(ctx, requestID, &col); err != nil {
			return nil, s.waitErr(ctx, err)
		}
		if out, ok := col.complete(s.now()); ok {
			return out, nil
		}
		if !time.Now().Before(nextCheck) {
			live, err := s.connectionLive(ctx, connectionID)
			if err != nil {
				return nil, s.waitErr(ctx, err)
			}
			if !live {
				// The agent may have answered just before it left.
				if err := s.poll(ctx, requestID, &col); err != nil {
					return nil, s.waitErr(ctx, err)
				}
				if out, ok := col.complete(s.now()); ok {
					return out, nil
				}
				return nil, fmt.Errorf("waiting for %s on connection %s: %w", requestID, connectionID, store.ErrGone)
			}
			nextCheck = time.Now().Add(s.goneCheck)
		}
		timer.Reset(interval)
		select {
		case <-timer.C:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		interval = min(time.Duration(float64(interval)*pollGrowth), s.pollMax)
	}
}

// waitErr prefers ctx's error, so that a caller past its deadline sees
// context.DeadlineExceeded rather than an SDK error wrapping it.
func (s *Store) waitErr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return err
}

// poll reads the chunks of requestID from the lowest one col lacks, page by
// page (a page is at most 1 MB, some eight chunks of 128 KB).
func (s *Store) poll(ctx context.Context, requestID string, col *collector) error {
	now := s.now()
	col.dropExpired(now)
	in := &dynamodb.QueryInput{
		TableName:                &s.tables.Responses,
		ConsistentRead:           aws.Bool(true),
		KeyConditionExpression:   aws.String("requestId = :id AND " + nameSeq + " >= :from"),
		ExpressionAttributeNames: map[string]string{nameSeq: attrSeq},
		ExpressionAttributeValues: item{
			":id":   sv(requestID),
			":from": nv(int64(col.firstMissing())),
		},
	}
	for {
		out, err := s.db.Query(ctx, in)
		if err != nil {
			return fmt.Errorf("query response %s: %w", requestID, err)
		}
		for _, it := range out.Items {
			if err := col.add(item(it), now); err != nil {
				return fmt.Errorf("response %s: %w", requestID, err)
			}
		}
		if len(out.LastEvaluatedKey) == 0 {
			return nil
		}
		in.ExclusiveStartKey = out.LastEvaluatedKey
	}
}

type storedChunk struct {
	c       *protocol.Response
	expires time.Time
}

// collector gathers the live chunks of one response across polls.
type collector struct {
	chunks map[int]storedChunk
	final  int // seq of the final chunk; -1 until one is seen
}

func (col *collector) add(it item, now time.Time) error {
	seq, ok := it.int(attrSeq)
	if !ok || seq < 0 || seq > protocol.MaxSeq {
		return fmt.Errorf("stored chunk has a bad seq %v", it[attrSeq])
	}
	n := int(seq)
	if !it.live(now) {
		col.drop(n)
		return nil
	}
	c := &protocol.Response{
		Type:      protocol.TypeResponse,
		RequestID: it.s(attrRequestID),
		Seq:       n,
		Final:     it.bool(attrFinal),
		Body:      it.s(attrBody),
	}
	if code, ok := it.int(attrStatusCode); ok {
		c.StatusCode = int(code)
	}
	if h := it.s(attrHeaders); h != "" {
		if err := json.Unmarshal([]byte(h), &c.Headers); err != nil {
			return fmt.Errorf("chunk %d: headers: %w", n, err)
		}
	}
	col.drop(n)
	col.chunks[n] = storedChunk{c: c, expires: it.time(attrExpiresAt)}
	if c.Final {
		col.final = n
	}
	return nil
}

func (col *collector) drop(seq int) {
	delete(col.chunks, seq)
	if seq == col.final {
		col.final = -1
	}
}

// dropExpired forgets chunks that expired since they were read, so that
// the next poll reads them again (and finds them gone or rewritten).
func (col *collector) dropExpired(now time.Time) {
	for seq, sc := range col.chunks {
		if !now.Before(sc.expires) {
			col.drop(seq)
		}
	}
}

func (col *collector) firstMissing() int {
	n := 0
	for {
		if _, ok := col.chunks[n]; !ok {
			return n
		}
		n++
	}
}

// complete returns chunks 0 through final when all are there and live.
func (col *collector) complete(now time.Time) ([]*protocol.Response, bool) {
	if col.final < 0 {
		return nil, false
	}
	out := make([]*protocol.Response, 0, col.final+1)
	for _, seq := range slices.Sorted(maps.Keys(col.chunks)) {
		if seq > col.final {
			break
		}
		sc := col.chunks[seq]
		if !now.Before(sc.expires) {
			return nil, false
		}
		out = append(out, sc.c)
	}
	if len(out) != col.final+1 {
		return nil, false
	}
	return out, true
}
