package api

// MaxReplyBytes is the largest message a grpcplay backend sends and a
// grpcplay client accepts. It is gRPC's own default receive limit, stated
// once so that both sides agree, and backend.MaxItemsCeiling keeps getAll's
// largest allowed reply under it.
const MaxReplyBytes = 4 << 20
