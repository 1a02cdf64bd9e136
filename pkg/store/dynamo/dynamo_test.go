package dynamo_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/lambdatunnel/lambdatunnel/pkg/protocol"
	"github.com/lambdatunnel/lambdatunnel/pkg/store"
	"github.com/lambdatunnel/lambdatunnel/pkg/store/dynamo"
	"github.com/lambdatunnel/lambdatunnel/pkg/store/dynamo/dynamotest"
	"github.com/lambdatunnel/lambdatunnel/pkg/store/storetest"
)

func TestMain(m *testing.M) { os.Exit(dynamotest.Main(m)) }

func ctxT(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestConformance(t *testing.T) {
	client := dynamotest.NewClient(t, dynamotest.Start(t))
	storetest.Run(t, func(t *testing.T, now func() time.Time) store.Store {
		return dynamo.New(client, dynamotest.NewTables(t, client), dynamo.WithClock(now))
	})
}

// countingStore returns a store on fresh tables whose client counts its
// calls; the counter starts at zero after the tables are made.
func countingStore(t *testing.T, opts ...dynamo.Option) (*dynamo.Store, *dynamo.CallCounter) {
	t.Helper()
	counter := &dynamo.CallCounter{}
	client := dynamotest.NewClient(t, dynamotest.Start(t), func(o *dynamodb.Options) {
		o.APIOptions = append(o.APIOptions, counter.APIOption)
	})
	s := dynamo.New(client, dynamotest.NewTables(t, client), opts...)
	counter.Reset()
	return s, counter
}

// maxPolls is how many polls the schedule (first at once, then after
// intervals growing from lo by half up to hi) can make within elapsed,
// counting no time for the polls themselves.
func maxPolls(elapsed, lo, hi time.Duration) int {
	n, sum, iv := 1, time.Duration(0), lo
	for sum+iv <= elapsed {
		sum += iv
		n++
		iv = min(time.Duration(float64(iv)*1.5), hi)
	}
	return n
}

func TestCallsPerSmallRequest(t *testing.T) {
	const lo, hi = 10 * time.Millisecond, 100 * time.Millisecond
	s, counter := countingStore(t, dynamo.WithPollInterval(lo, hi))
	ctx := ctxT(t)
	now := time.Now()
	if err := s.PutConnection(ctx, store.Connection{ID: "c1", CreatedAt: now, ExpiresAt: now.Add(2 * time.Hour)}); err != nil {
		t.Fatal(err)
	}
	small := func(id string) *protocol.Response {
		return &protocol.Response{Type: protocol.TypeResponse, RequestID: id, Final: true, StatusCode: 200,
			Headers: protocol.Headers{"Content-Type": {"text/plain"}}, Body: protocol.EncodeBody([]byte("hello"))}
	}

	t.Run("AlreadyStored", func(t *testing.T) {
		counter.Reset()
		if err := s.PutChunk(ctx, small("r1"), time.Now().Add(time.Minute)); err != nil {
			t.Fatal(err)
		}
		if _, err := s.WaitResponse(ctx, "c1", "r1"); err != nil {
			t.Fatal(err)
		}
		got := counter.Snapshot()
		t.Logf("calls: %v", got)
		if len(got) != 2 || got["PutItem"] != 1 || got["Query"] != 1 {
			t.Errorf("calls = %v, want exactly 1 PutItem and 1 Query", got)
		}
	})

	t.Run("ArrivesAfter150ms", func(t *testing.T) {
		counter.Reset()
		put := make(chan error, 1)
		go func() {
			time.Sleep(150 * time.Millisecond)
			put <- s.PutChunk(ctx, small("r2"), time.Now().Add(time.Minute))
		}()
		start := time.Now()
		if _, err := s.WaitResponse(ctx, "c1", "r2"); err != nil {
			t.Fatal(err)
		}
		elapsed := time.Since(start)
		if err := <-put; err != nil {
			t.Fatal(err)
		}
		got := counter.Snapshot()
		limit := maxPolls(elapsed, lo, hi)
		t.Logf("calls in %v: %v (the schedule allows %d polls)", elapsed.Round(time.Millisecond), got, limit)
		if got["Query"] > limit {
			t.Errorf("%d Queries in %v, want at most %d", got["Query"], elapsed, limit)
		}
		if got["GetItem"] != 0 || got["PutItem"] != 1 || len(got) != 2 {
			t.Errorf("calls = %v, want Queries, 1 PutItem and no connection check", got)
		}
	})

	t.Run("SlowRequestChecksConnectionOncePerSecond", func(t *testing.T) {
		counter.Reset()
		wctx, cancel := context.WithTimeout(ctx, 1500*time.Millisecond)
		defer cancel()
		start := time.Now()
		if _, err := s.WaitResponse(wctx, "c1", "r3"); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("WaitResponse = %v, want DeadlineExceeded", err)
		}
		elapsed := time.Since(start)
		got := counter.Snapshot()
		limit := maxPolls(elapsed, lo, hi)
		t.Logf("calls in %v: %v (the schedule allows %d polls)", elapsed.Round(time.Millisecond), got, limit)
		if got["GetItem"] != 1 || got["Query"] > limit || len(got) != 2 {
			t.Errorf("calls = %v, want 1 GetItem and at most %d Queries", got, limit)
		}
	})
}

func TestLargeResponse(t *testing.T) {
	s, counter := countingStore(t)
	ctx := ctxT(t)
	now := time.Now()
	if err := s.PutConnection(ctx, store.Connection{ID: "c1", CreatedAt: now, ExpiresAt: now.Add(2 * time.Hour)}); err != nil {
		t.Fatal(err)
	}
	body := make([]byte, 4_500_000)
	rand.Read(body)
	b64 := protocol.EncodeBody(body)
	head := protocol.Response{Type: protocol.TypeResponse, RequestID: "big", StatusCode: 200,
		Headers: protocol.Headers{"Content-Type": {"application/octet-stream"}}}
	chunks, err := protocol.SplitResponse(head, b64, protocol.MaxMessageBytes)
	if err != nil {
		t.Fatal(err)
	}
	if len(chunks) < 36 {
		t.Fatalf("%d chunks, want at least 36", len(chunks))
	}
	counter.Reset()

	type result struct {
		chunks []*protocol.Response
		err    error
	}
	done := make(chan result, 1)
	start := time.Now()
	go func() {
		c, err := s.WaitResponse(ctx, "c1", "big")
		done <- result{c, err}
	}()
	// Four writers, last chunk first, as concurrent Lambda invocations may
	// store them.
	work := make(chan *protocol.Response)
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for c := range work {
				if err := s.PutChunk(ctx, c, time.Now().Add(time.Minute)); err != nil {
					t.Error(err)
				}
			}
		})
	}
	for i := len(chunks) - 1; i >= 0; i-- {
		work <- chunks[i]
	}
	close(work)
	wg.Wait()
	r := <-done
	if r.err != nil {
		t.Fatal(r.err)
	}
	t.Logf("%d chunks of %d bytes of base64 stored and collected in %v; calls %v",
		len(chunks), len(b64), time.Since(start).Round(time.Millisecond), counter.Snapshot())
	got, err := protocol.JoinResponse(r.chunks, 0)
	if err != nil {
		t.Fatal(err)
	}
	if got.Body != b64 {
		t.Fatal("the reassembled base64 body differs from the one stored")
	}
	decoded, err := protocol.DecodeBody(got.Body)
	if err != nil || !bytes.Equal(decoded, body) {
		t.Fatalf("decoded body differs (err %v)", err)
	}
	if got.StatusCode != 200 || got.Headers["Content-Type"][0] != "application/octet-stream" {
		t.Errorf("head = %d %v", got.StatusCode, got.Headers)
	}
}

func TestPutChunkTooLarge(t *testing.T) {
	s, counter := countingStore(t)
	c := &protocol.Response{Type: protocol.TypeResponse, RequestID: "r", Final: true,
		Body: protocol.EncodeBody(make([]byte, 300<<10))}
	if err := s.PutChunk(ctxT(t), c, time.Now().Add(time.Minute)); !errors.Is(err, protocol.ErrTooLarge) {
		t.Fatalf("PutChunk of a 400 KB chunk: %v, want ErrTooLarge", err)
	}
	if got := counter.Snapshot(); len(got) != 0 {
		t.Errorf("calls = %v, want none", got)
	}
}

func TestCreateTables(t *testing.T) {
	client := dynamotest.NewClient(t, dynamotest.Start(t))
	tables := dynamotest.NewTables(t, client)
	ctx := ctxT(t)
	if err := dynamo.CreateTables(ctx, client, tables); err != nil {
		t.Fatalf("CreateTables over existing tables: %v", err)
	}
	for _, tt := range []struct {
		table   string
		wantKey []types.KeySchemaElement
		wantGSI bool
	}{
		{tables.Connections, []types.KeySchemaElement{{AttributeName: aws.String("connectionId"), KeyType: types.KeyTypeHash}}, true},
		{tables.Subdomains, []types.KeySchemaElement{{AttributeName: aws.String("subdomain"), KeyType: types.KeyTypeHash}}, false},
		{tables.Responses, []types.KeySchemaElement{
			{AttributeName: aws.String("requestId"), KeyType: types.KeyTypeHash},
			{AttributeName: aws.String("seq"), KeyType: types.KeyTypeRange},
		}, false},
	} {
		t.Run(tt.table, func(t *testing.T) {
			d, err := client.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: &tt.table})
			if err != nil {
				t.Fatal(err)
			}
			tbl := d.Table
			if tbl.TableStatus != types.TableStatusActive {
				t.Errorf("status %s, want ACTIVE", tbl.TableStatus)
			}
			if tbl.BillingModeSummary == nil || tbl.BillingModeSummary.BillingMode != types.BillingModePayPerRequest {
				t.Errorf("billing %+v, want PAY_PER_REQUEST", tbl.BillingModeSummary)
			}
			if len(tbl.KeySchema) != len(tt.wantKey) {
				t.Fatalf("key schema %+v, want %+v", tbl.KeySchema, tt.wantKey)
			}
			for i, k := range tt.wantKey {
				if *tbl.KeySchema[i].AttributeName != *k.AttributeName || tbl.KeySchema[i].KeyType != k.KeyType {
					t.Errorf("key %d = %s %s, want %s %s", i, *tbl.KeySchema[i].AttributeName, tbl.KeySchema[i].KeyType, *k.AttributeName, k.KeyType)
				}
			}
			if tt.wantGSI {
				if len(tbl.GlobalSecondaryIndexes) != 1 {
					t.Fatalf("GSIs %+v, want subdomain-index", tbl.GlobalSecondaryIndexes)
				}
				g := tbl.GlobalSecondaryIndexes[0]
				if *g.IndexName != dynamo.SubdomainIndex || *g.KeySchema[0].AttributeName != "subdomain" ||
					g.KeySchema[0].KeyType != types.KeyTypeHash || g.Projection.ProjectionType != types.ProjectionTypeAll {
					t.Errorf("GSI %s on %s %s projecting %s, want subdomain-index on subdomain HASH projecting ALL",
						*g.IndexName, *g.KeySchema[0].AttributeName, g.KeySchema[0].KeyType, g.Projection.ProjectionType)
				}
			} else if len(tbl.GlobalSecondaryIndexes) != 0 {
				t.Errorf("unexpected GSIs %+v", tbl.GlobalSecondaryIndexes)
			}
			ttl, err := client.DescribeTimeToLive(ctx, &dynamodb.DescribeTimeToLiveInput{TableName: &tt.table})
			if err != nil {
				t.Fatal(err)
			}
			if d := ttl.TimeToLiveDescription; d == nil || d.TimeToLiveStatus != types.TimeToLiveStatusEnabled || aws.ToString(d.AttributeName) != "ttl" {
				t.Errorf("TTL %+v, want ENABLED on ttl", d)
			}
		})
	}
}

func TestCreateTablesRefusesAForeignTable(t *testing.T) {
	client := dynamotest.NewClient(t, dynamotest.Start(t))
	ctx := ctxT(t)
	tables := dynamotest.NewTables(t, client)
	foreign := tables.Responses + "-foreign"
	_, err := client.CreateTable(ctx, &dynamodb.CreateTableInput{
		TableName:            &foreign,
		BillingMode:          types.BillingModePayPerRequest,
		KeySchema:            []types.KeySchemaElement{{AttributeName: aws.String("id"), KeyType: types.KeyTypeHash}},
		AttributeDefinitions: []types.AttributeDefinition{{AttributeName: aws.String("id"), AttributeType: types.ScalarAttributeTypeS}},
	})
	if err != nil {
		t.Fatal(err)
	}
	tables.Responses = foreign
	if err := dynamo.CreateTables(ctx, client, tables); err == nil {
		t.Fatal("CreateTables accepted a responses table keyed on id")
	} else {
		t.Log(err)
	}
}

func TestTablesFromEnv(t *testing.T) {
	t.Setenv(dynamo.EnvConnectionsTable, "")
	t.Setenv(dynamo.EnvSubdomainsTable, "my-subs")
	t.Setenv(dynamo.EnvResponsesTable, "")
	want := dynamo.Tables{Connections: "lambdatunnel-connections", Subdomains: "my-subs", Responses: "lambdatunnel-responses"}
	if got := dynamo.TablesFromEnv(); got != want {
		t.Errorf("TablesFromEnv() = %+v, want %+v", got, want)
	}
}
