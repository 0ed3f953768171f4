import { context, ROOT_CONTEXT, SpanKind, SpanStatusCode, trace, type Attributes, type Context, type Span, type Tracer } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { BasicTracerProvider, BatchSpanProcessor } from '@opentelemetry/sdk-trace-base';
import type { ActorRef } from './registry.js';

export { SpanKind, SpanStatusCode, type Context, type Span };

/** The W3C header that carries a trace across processes: in outbox rows, NATS headers and bus messages. */
export const TRACEPARENT = 'traceparent';
/** The version of the actor whose transition wrote a traced outbox row (for the relay's span). */
export const SOURCE_VERSION = 'Concord-Source-Version';

/** Span attribute names Concord sets on every span about an actor. */
export const Attr = {
  actorType: 'concord.actor.type',
  actorId: 'concord.actor.id',
  actorVersion: 'concord.actor.version',
  event: 'concord.event.type',
  messageId: 'concord.message.id',
  subject: 'messaging.destination.name',
  outcome: 'concord.outcome',
} as const;

const propagator = new W3CTraceContextPropagator();
const carrier = {
  get: (c: Record<string, string>, k: string) => c[k],
  keys: (c: Record<string, string>) => Object.keys(c),
  set: (c: Record<string, string>, k: string, v: string) => {
    c[k] = v;
  },
};

let contextManager: AsyncLocalStorageContextManager | undefined;

/**
 * OpenTelemetry traces of the engine's path (HTTP request -> transition -> commit -> relay ->
 * NATS -> the next transition), or nothing at all. Every hook asks `enabled` first, so with no
 * OTLP endpoint configured a transition makes no span object, reads no context and writes no
 * header: tracing costs one boolean test per hook (bench/traces.ts measures both).
 *
 * The trace crosses process and transport boundaries as a W3C `traceparent`: a transition's
 * outbox rows carry it in their headers, the relay's span takes it over and passes its own on
 * the NATS (or in-process) message, and the consumer that applies the message starts the next
 * transition under it. Within a process the active context (AsyncLocalStorage) links an HTTP
 * request's span to the transition it causes. Spans are exported over OTLP/HTTP as JSON.
 */
export class Tracing {
  readonly enabled: boolean;
  readonly #tracer: Tracer | null;
  readonly #provider: BasicTracerProvider | null;

  private constructor(provider: BasicTracerProvider | null) {
    this.#provider = provider;
    this.#tracer = provider?.getTracer('concord') ?? null;
    this.enabled = provider !== null;
  }

  /** No spans, no headers, nothing exported. */
  static readonly off = new Tracing(null);

  /** Traces exported to `<endpoint>/v1/traces` (OTLP/HTTP, JSON) in batches. */
  static otlp(o: { endpoint: string; serviceName: string; scheduledDelayMillis?: number }): Tracing {
    if (!contextManager) {
      // one per process: the active span follows async calls (an HTTP request into the host)
      contextManager = new AsyncLocalStorageContextManager().enable();
      context.setGlobalContextManager(contextManager);
    }
    const exporter = new OTLPTraceExporter({ url: `${o.endpoint.replace(/\/+$/, '')}/v1/traces`, timeoutMillis: 5_000 });
    const provider = new BasicTracerProvider({
      resource: resourceFromAttributes({ 'service.name': o.serviceName }),
      spanProcessors: [new BatchSpanProcessor(exporter, { scheduledDelayMillis: o.scheduledDelayMillis ?? 1000 })],
    });
    return new Tracing(provider);
  }

  /** From the runtime's configuration: `otlp` when an endpoint is set, else `off`. */
  static fromConfig(c: { endpoint: string | undefined; serviceName: string }): Tracing {
    return c.endpoint ? Tracing.otlp({ endpoint: c.endpoint, serviceName: c.serviceName }) : Tracing.off;
  }

  /**
   * The parent of work starting now: the trace a message carried (`traceparent`), else the
   * caller's active span (an HTTP request). Undefined when tracing is off.
   */
  parent(traceparent?: string): Context | undefined {
    if (!this.#tracer) return undefined;
    if (traceparent) return propagator.extract(ROOT_CONTEXT, { [TRACEPARENT]: traceparent }, carrier);
    return context.active();
  }

  /** Starts a span under `parent` (null when tracing is off). */
  start(name: string, kind: SpanKind, parent: Context | undefined, attributes: Attributes): Span | null {
    if (!this.#tracer) return null;
    return this.#tracer.startSpan(name, { kind, attributes }, parent ?? context.active());
  }

  /** The span's W3C `traceparent`, to carry on a message. */
  traceparentOf(span: Span): string {
    const out: Record<string, string> = {};
    propagator.inject(trace.setSpan(ROOT_CONTEXT, span), out, carrier);
    return out[TRACEPARENT]!;
  }

  /** Runs `fn` with `span` active (so spans it starts are its children). */
  within<T>(span: Span | null, fn: () => T): T {
    return span ? context.with(trace.setSpan(context.active(), span), fn) : fn();
  }

  /**
   * Exports what is buffered and stops, waiting at most `waitMs`: a collector that is down must
   * not hold up the process's shutdown (SHUTDOWN_TIMEOUT_MS); its last spans are lost then.
   */
  async shutdown(waitMs = 2_000): Promise<void> {
    if (!this.#provider) return;
    let timer: NodeJS.Timeout | undefined;
    const gaveUp = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, waitMs);
      timer.unref();
    });
    try {
      await Promise.race([this.#provider.shutdown(), gaveUp]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Exports what is buffered now (tests, shutdown). */
  async flush(): Promise<void> {
    await this.#provider?.forceFlush();
  }
}

/** The attributes of a span about one actor. */
export const actorAttributes = (ref: ActorRef, version?: number): Attributes => ({
  [Attr.actorType]: ref.type,
  [Attr.actorId]: ref.id,
  ...(version !== undefined ? { [Attr.actorVersion]: version } : {}),
});

/** Ends a span as failed with `err`. */
export function endFailed(span: Span | null, err: unknown): void {
  if (!span) return;
  span.recordException(err instanceof Error ? err : new Error(String(err)));
  span.setStatus({ code: SpanStatusCode.ERROR, message: err instanceof Error ? err.message : String(err) });
  span.end();
}
