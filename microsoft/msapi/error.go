// Package msapi holds what the Microsoft adapters share: the error every failed call becomes,
// so the activity layer can tell retryable from permanent failures in one place.
package msapi

import (
	"fmt"
	"net/http"
	"time"
)

// Error is a failed call to a Microsoft API (or to Entra ID for its token).
type Error struct {
	// Service is "login", "graph", "dataverse" or "partnercenter".
	Service string
	// Operation names the call in words, e.g. "list role assignments".
	Operation string
	// Method and Path of the request; the path never carries a secret.
	Method, Path string
	// Status is the HTTP status (0 when the request never got an answer).
	Status int
	// Code is the service's error code (Graph error.code, Dataverse error.code, AADSTS code).
	Code string
	// Message is the service's message.
	Message string
	// RetryAfter is the delay the service asked for (429/503/504 Retry-After or
	// x-ms-retry-after-ms). The client has already waited it out in place where it could; a
	// non-zero value on a returned error is the wait that did not fit, for the caller's retry.
	RetryAfter time.Duration
	// Attempts is how many times the request was sent when the client gave up retrying it in
	// place (0 or 1: sent once).
	Attempts int
	// Hint tells the operator what to do, e.g. which permission or consent is missing.
	Hint string
	// Local is true when the adapter refused the call itself, before sending it, because an
	// argument or the configuration is wrong (e.g. no tenant known for an organisation URL).
	// Status is then 0, but no retry cures it: fix the input or the configuration.
	Local bool
}

// Error reads "service: operation failed with HTTP status code: message — hint"; it never
// carries a token.
func (e *Error) Error() string {
	s := fmt.Sprintf("%s: %s failed", e.Service, e.Operation)
	if e.Status != 0 {
		s += fmt.Sprintf(" with HTTP %d", e.Status)
	}
	if e.Code != "" {
		s += " " + e.Code
	}
	if e.Message != "" {
		s += ": " + e.Message
	}
	if e.Attempts > 1 {
		s += fmt.Sprintf(" (sent %d times)", e.Attempts)
	}
	if e.Hint != "" {
		s += " — " + e.Hint
	}
	return s
}

// Retryable reports whether trying again later may succeed: throttling, server errors and
// transport failures. 4xx answers other than 408/429, and Local refusals, are permanent.
func (e *Error) Retryable() bool {
	switch {
	case e.Local:
		return false
	case e.Status == 0:
		return true
	case e.Status == http.StatusRequestTimeout, e.Status == http.StatusTooManyRequests:
		return true
	case e.Status >= 500:
		return true
	}
	return false
}

// NotFound reports a 404.
func (e *Error) NotFound() bool { return e.Status == http.StatusNotFound }

// Unauthorized reports a 401 or 403: a missing permission or consent that no retry cures.
func (e *Error) Unauthorized() bool {
	return e.Status == http.StatusUnauthorized || e.Status == http.StatusForbidden
}
