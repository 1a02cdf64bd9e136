// Package dynamo is the store.Store of the AWS deployment: three DynamoDB
// tables (connections, subdomains, responses), read with strong consistency,
// with every item's expiry honoured on read because DynamoDB's TTL deletes
// expired items only lazily.
//
// Times are stored twice: a precise expiresAt (and createdAt) in Unix
// nanoseconds, which round-trips exactly and is what reads and conditions
// compare, and ttl in Unix seconds (rounded up), which is only for
// DynamoDB's TTL sweeper.
package dynamo

import (
	"context"
	"os"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/lambdatunnel/lambdatunnel/pkg/store"
)

var _ store.Store = (*Store)(nil)

// Environment variables naming the tables (see TablesFromEnv).
const (
	EnvConnectionsTable = "TUNNEL_CONNECTIONS_TABLE"
	EnvSubdomainsTable  = "TUNNEL_SUBDOMAINS_TABLE"
	EnvResponsesTable   = "TUNNEL_RESPONSES_TABLE"
)

// Default table names, used when the environment names none.
const (
	DefaultConnectionsTable = "lambdatunnel-connections"
	DefaultSubdomainsTable  = "lambdatunnel-subdomains"
	DefaultResponsesTable   = "lambdatunnel-responses"
)

// SubdomainIndex is the GSI of the connections table on subdomain. It is
// eventually consistent, so it serves listing only, never uniqueness.
const SubdomainIndex = "subdomain-index"

// TTLAttribute is the attribute DynamoDB's TTL is enabled on in every table.
const TTLAttribute = "ttl"

// Attribute names.
const (
	attrConnectionID = "connectionId"
	attrSubdomain    = "subdomain"
	attrOwner        = "owner"
	attrKeyHash      = "keyHash"
	attrCreatedAt    = "createdAt" // Unix nanoseconds
	attrExpiresAt    = "expiresAt" // Unix nanoseconds
	attrRequestID    = "requestId"
	attrSeq          = "seq"
	attrFinal        = "final"
	attrStatusCode   = "statusCode"
	attrHeaders      = "headers" // JSON object of name -> []value
	attrBody         = "body"    // the chunk's base64 text as sent
)

// Tables names the three tables.
type Tables struct {
	Connections string
	Subdomains  string
	Responses   string
}

// TablesFromEnv reads the table names from TUNNEL_CONNECTIONS_TABLE,
// TUNNEL_SUBDOMAINS_TABLE and TUNNEL_RESPONSES_TABLE, using the defaults
// (lambdatunnel-connections, ...) for those unset or empty.
func TablesFromEnv() Tables {
	get := func(key, def string) string {
		if v := os.Getenv(key); v != "" {
			return v
		}
		return def
	}
	return Tables{
		Connections: get(EnvConnectionsTable, DefaultConnectionsTable),
		Subdomains:  get(EnvSubdomainsTable, DefaultSubdomainsTable),
		Responses:   get(EnvResponsesTable, DefaultResponsesTable),
	}
}

// API is the part of the DynamoDB client the store uses; *dynamodb.Client
// implements it.
type API interface {
	GetItem(ctx context.Context, in *dynamodb.GetItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error)
	PutItem(ctx context.Context, in *dynamodb.PutItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error)
	UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error)
	DeleteItem(ctx context.Context, in *dynamodb.DeleteItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.DeleteItemOutput, error)
	Query(ctx context.Context, in *dynamodb.QueryInput, optFns ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error)
}

// Defaults of the response wait.
const (
	// DefaultPollMin is the first interval between polls for a response.
	DefaultPollMin = 10 * time.Millisecond
	// DefaultPollMax caps the interval between polls.
	DefaultPollMax = 100 * time.Millisecond
	// DefaultGoneCheck is how often a waiter checks that its connection
	// still exists, starting this long after the wait begins.
	DefaultGoneCheck = time.Second
	// pollGrowth multiplies the poll interval after each empty poll.
	pollGrowth = 1.5
)

// Store keeps the state in DynamoDB. It is safe for concurrent use.
type Store struct {
	db        API
	tables    Tables
	now       func() time.Time
	pollMin   time.Duration
	pollMax   time.Duration
	goneCheck time.Duration
}

// Option configures a Store.
type Option func(*Store)

// WithClock sets the time source that expiries are judged by (time.Now by
// default). Poll and connection-check timing always use real time.
func WithClock(now func() time.Time) Option {
	return func(s *Store) {
		if now != nil {
			s.now = now
		}
	}
}

// WithPollInterval sets the first and the largest interval between polls
// for a response; the interval grows by half after each empty poll.
// Non-positive values keep the defaults; max is raised to min if smaller.
func WithPollInterval(min, max time.Duration) Option {
	return func(s *Store) {
		if min > 0 {
			s.pollMin = min
		}
		if max > 0 {
			s.pollMax = max
		}
		if s.pollMax < s.pollMin {
			s.pollMax = s.pollMin
		}
	}
}

// WithGoneCheck sets how often WaitResponse checks that the connection
// still exists (a strongly consistent GetItem), the first time this long
// after it starts waiting. Non-positive values keep the default.
func WithGoneCheck(every time.Duration) Option {
	return func(s *Store) {
		if every > 0 {
			s.goneCheck = every
		}
	}
}

// New returns a store over the given tables (see CreateTables).
func New(db API, tables Tables, opts ...Option) *Store {
	s := &Store{
		db:        db,
		tables:    tables,
		now:       time.Now,
		pollMin:   DefaultPollMin,
		pollMax:   DefaultPollMax,
		goneCheck: DefaultGoneCheck,
	}
	for _, o := range opts {
		o(s)
	}
	return s
}

// Retry settings of NewClient. Throttled calls are retried by the SDK's
// standard retryer with jittered exponential backoff; the backoff is capped
// well below API Gateway's 30 s so that a throttled poll does not eat the
// whole request deadline.
const (
	retryMaxAttempts = 5
	retryMaxBackoff  = 2 * time.Second
)

// NewClient returns a DynamoDB client for cfg with the SDK's standard
// retryer (5 attempts, backoff capped at 2 s). optFns run after that, so
// they may add APIOptions (a CallCounter) or set BaseEndpoint.
func NewClient(cfg aws.Config, optFns ...func(*dynamodb.Options)) *dynamodb.Client {
	opts := append([]func(*dynamodb.Options){func(o *dynamodb.Options) {
		o.Retryer = retry.NewStandard(func(so *retry.StandardOptions) {
			so.MaxAttempts = retryMaxAttempts
			so.MaxBackoff = retryMaxBackoff
		})
	}}, optFns...)
	return dynamodb.NewFromConfig(cfg, opts...)
}
