// ServiceApp: pydbgauto's sample service, an ASP.NET Core minimal API on Kestrel.
//
//     ServiceApp [--port N]      N = 0 (the default): pick a free port
//
// Listens on 127.0.0.1 only. When it listens it prints one line, flushed:
//     READY <pid> <port>
// and `DONE <total throws>` when it stops. Endpoints (GET; `type` is a full type name from
// /types, default System.InvalidOperationException; `n` is 1..100000, default 1):
//     /handled?type=T&n=N          throws and catches T n times in the request; 200
//     /unhandled?type=T            throws T out of the handler: the framework catches it and answers 500
//     /background?type=T&n=N[&wait=1]
//                                  a hosted background service throws and catches T n times; 202,
//                                  or 200 once the work is done with wait=1
//     /stats                       JSON: how many exceptions of each kind and type it has thrown
//     /types                       JSON: the types it can throw
//     /exit                        answers, then stops the service
// Every throw is counted just before it happens (by kind and by type), so /stats never lags behind a
// debugger's stop at the throw. Messages are "<kind> <type> #<n>", n counting throws of that type.
// A debugger sees an unhandled-in-request throw twice: the throw, then the framework's rethrow of the
// same object (ExceptionDispatchInfo.Throw, when Kestrel awaits the async middleware's task); /stats
// counts it once.
using System;
using System.Collections.Generic;
using System.Linq;
using System.Net;
using System.Runtime.CompilerServices;
using System.Threading;
using System.Threading.Channels;
using System.Threading.Tasks;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace ServiceApp;

/// <summary>A custom exception, for "derived from ArgumentException" predicates.</summary>
public sealed class OrderRejectedException : ArgumentException
{
    public OrderRejectedException(string message, string paramName) : base(message, paramName) { }
}

/// <summary>How many exceptions the service has thrown, by kind (handled, unhandled, background) and type.</summary>
public sealed class Counters
{
    public static readonly string[] Kinds = { "handled", "unhandled", "background" };

    readonly object _gate = new();
    readonly Dictionary<string, SortedDictionary<string, long>> _byKind = Kinds.ToDictionary(
        k => k, _ => new SortedDictionary<string, long>(StringComparer.Ordinal));
    readonly SortedDictionary<string, long> _byType = new(StringComparer.Ordinal);
    long _total;
    long _requests;
    long _pending;

    /// <summary>Counts one throw; returns how many of this type have been thrown, this one included.</summary>
    public long Count(string kind, string type)
    {
        lock (_gate)
        {
            _total++;
            var kindCounts = _byKind[kind];
            kindCounts[type] = kindCounts.GetValueOrDefault(type) + 1;
            var n = _byType.GetValueOrDefault(type) + 1;
            _byType[type] = n;
            return n;
        }
    }

    public long Total { get { lock (_gate) return _total; } }

    public void Request() => Interlocked.Increment(ref _requests);

    public void Queued() => Interlocked.Increment(ref _pending);

    public void Finished() => Interlocked.Decrement(ref _pending);

    public Dictionary<string, object> Snapshot()
    {
        lock (_gate)
        {
            return new Dictionary<string, object>
            {
                ["pid"] = Environment.ProcessId,
                ["runtime"] = Environment.Version.ToString(),
                ["requests"] = Interlocked.Read(ref _requests),
                ["background_pending"] = Interlocked.Read(ref _pending),
                ["total"] = _total,
                ["kinds"] = _byKind.ToDictionary(kv => kv.Key, kv => new SortedDictionary<string, long>(kv.Value)),
                ["types"] = new SortedDictionary<string, long>(_byType),
            };
        }
    }
}

/// <summary>The one place that throws: counted first, then thrown, never inlined (a stable throw site).</summary>
public static class Thrower
{
    public const string DefaultType = "System.InvalidOperationException";
    public const int MaxCount = 100_000;

    static readonly SortedDictionary<string, Func<string, Exception>> Factories = new(StringComparer.Ordinal)
    {
        ["System.ArgumentException"] = m => new ArgumentException(m),
        ["System.Collections.Generic.KeyNotFoundException"] = m => new KeyNotFoundException(m),
        ["System.FormatException"] = m => new FormatException(m),
        ["System.InvalidOperationException"] = m => new InvalidOperationException(m),
        ["System.TimeoutException"] = m => new TimeoutException(m),
        ["ServiceApp.OrderRejectedException"] = m => new OrderRejectedException(m, "order"),
    };

    public static IEnumerable<string> Types => Factories.Keys;

    public static bool Known(string type) => Factories.ContainsKey(type);

    [MethodImpl(MethodImplOptions.NoInlining)]
    public static void Throw(Counters counters, string kind, string type)
    {
        var n = counters.Count(kind, type);
        throw Factories[type]($"{kind} {type} #{n}");
    }

    /// <summary>Throws and catches <paramref name="count"/> times; returns how many it caught.</summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    public static int ThrowAndCatch(Counters counters, string kind, string type, int count)
    {
        var caught = 0;
        for (var i = 0; i < count; i++)
        {
            try
            {
                Throw(counters, kind, type);
            }
            catch (Exception)
            {
                caught++;
            }
        }
        return caught;
    }

    /// <summary>A 400 answer for a bad type or count, else null.</summary>
    public static IResult? Refuse(string type, int count)
    {
        if (!Known(type))
            return Results.BadRequest(new { error = $"unknown type '{type}'", known = Types.ToArray() });
        if (count < 1 || count > MaxCount)
            return Results.BadRequest(new { error = $"n must be 1..{MaxCount}, not {count}" });
        return null;
    }
}

/// <summary>Background work: a hosted service that takes jobs from a queue and throws and catches.</summary>
public sealed class BackgroundThrower : BackgroundService
{
    sealed record Job(string Type, int Count, TaskCompletionSource Done);

    readonly Channel<Job> _jobs = Channel.CreateUnbounded<Job>(new UnboundedChannelOptions { SingleReader = true });
    readonly Counters _counters;

    public BackgroundThrower(Counters counters) => _counters = counters;

    public Task Enqueue(string type, int count)
    {
        var job = new Job(type, count, new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously));
        _counters.Queued();
        if (!_jobs.Writer.TryWrite(job))
        {
            _counters.Finished();
            job.Done.SetResult();  // stopping: the job is dropped, nothing was thrown
        }
        return job.Done.Task;
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        // No token here: StopAsync completes the queue, so the loop ends without an exception of its own.
        await foreach (var job in _jobs.Reader.ReadAllAsync())
        {
            Thrower.ThrowAndCatch(_counters, "background", job.Type, job.Count);
            _counters.Finished();
            job.Done.SetResult();
        }
    }

    public override Task StopAsync(CancellationToken cancellationToken)
    {
        _jobs.Writer.TryComplete();
        return base.StopAsync(cancellationToken);
    }
}

public static class Program
{
    public static int Main(string[] args)
    {
        var port = 0;
        for (var i = 0; i < args.Length; i++)
        {
            if (args[i] == "--port" && i + 1 < args.Length && int.TryParse(args[i + 1], out port)
                && port >= 0 && port <= 65535)
            {
                i++;
                continue;
            }
            Console.Error.WriteLine($"usage: ServiceApp [--port N] (N in 0..65535, 0 = a free port); got '{string.Join(' ', args)}'");
            return 2;
        }

        var builder = WebApplication.CreateBuilder(new WebApplicationOptions
        {
            Args = Array.Empty<string>(),
            ContentRootPath = AppContext.BaseDirectory,
        });
        builder.Logging.ClearProviders();  // stdout carries READY and DONE only
        builder.WebHost.ConfigureKestrel(o => o.Listen(IPAddress.Loopback, port));
        builder.Services.AddSingleton<Counters>();
        builder.Services.AddSingleton<BackgroundThrower>();
        builder.Services.AddHostedService(sp => sp.GetRequiredService<BackgroundThrower>());

        var app = builder.Build();
        var counters = app.Services.GetRequiredService<Counters>();
        app.Use(async (context, next) =>
        {
            counters.Request();
            await next(context);
        });

        app.MapGet("/handled", (string? type, int? n) =>
        {
            var t = type ?? Thrower.DefaultType;
            var count = n ?? 1;
            var refused = Thrower.Refuse(t, count);
            if (refused != null)
                return refused;
            var caught = Thrower.ThrowAndCatch(counters, "handled", t, count);
            return Results.Json(new { kind = "handled", type = t, thrown = count, caught });
        });
        app.MapGet("/unhandled", (string? type) =>
        {
            var t = type ?? Thrower.DefaultType;
            var refused = Thrower.Refuse(t, 1);
            if (refused != null)
                return refused;
            Thrower.Throw(counters, "unhandled", t);  // the framework catches it and answers 500
            return Results.StatusCode(500);
        });
        app.MapGet("/background", async (string? type, int? n, int? wait, BackgroundThrower worker) =>
        {
            var t = type ?? Thrower.DefaultType;
            var count = n ?? 1;
            var refused = Thrower.Refuse(t, count);
            if (refused != null)
                return refused;
            var done = worker.Enqueue(t, count);
            var waited = wait.GetValueOrDefault() != 0;
            if (waited)
                await done;
            return Results.Json(new { kind = "background", type = t, queued = count, done = waited },
                statusCode: waited ? 200 : 202);
        });
        app.MapGet("/stats", () => Results.Json(counters.Snapshot()));
        app.MapGet("/types", () => Results.Json(Thrower.Types.ToArray()));
        app.MapGet("/exit", (HttpContext context, IHostApplicationLifetime life) =>
        {
            context.Response.OnCompleted(() =>
            {
                life.StopApplication();
                return Task.CompletedTask;
            });
            return Results.Json(new { exiting = true, total = counters.Total });
        });

        try
        {
            app.Start();
        }
        catch (Exception e) when (e is System.IO.IOException || e.InnerException is System.IO.IOException)
        {
            Console.Error.WriteLine($"ServiceApp: cannot listen on 127.0.0.1:{port}: {e.Message}");
            return 1;
        }
        var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!
            .Addresses.First();
        Console.Out.WriteLine($"READY {Environment.ProcessId} {new Uri(address).Port}");
        Console.Out.Flush();
        app.WaitForShutdown();
        Console.Out.WriteLine($"DONE {counters.Total}");
        Console.Out.Flush();
        return 0;
    }
}
