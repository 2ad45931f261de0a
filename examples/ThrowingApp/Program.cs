// ThrowingApp: the embedded default target of pydbgauto's tests and examples.
//
// Every throw statement prints one line first, flushed, so a test can match
// debugger events to throws:
//     THROW <n> <ExceptionType> tid=<os thread id> <what>
// A rethrow (`throw;`) is a throw too and gets its own number.
using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Threading;
using System.Runtime.CompilerServices;

namespace ThrowingApp;

/// <summary>A custom exception, for "derived from ArgumentException" predicates.</summary>
public sealed class OrderRejectedException : ArgumentException
{
    public OrderRejectedException(string message, string paramName) : base(message, paramName) { }
}

public static class Program
{
    static int _count;
    static readonly object Gate = new();

    [DllImport("libc", EntryPoint = "gettid")]
    static extern int LinuxGetTid();

    [DllImport("kernel32", EntryPoint = "GetCurrentThreadId")]
    static extern int WindowsGetTid();

    static int OsTid() => OperatingSystem.IsWindows() ? WindowsGetTid() : LinuxGetTid();

    /// <summary>Prints the numbered line that announces a throw.</summary>
    static void Announce(string type, string what)
    {
        lock (Gate)
        {
            _count++;
            Console.Out.WriteLine($"THROW {_count} {type} tid={OsTid()} {what}");
            Console.Out.Flush();
        }
    }

    public static int Main(string[] args)
    {
        var scenario = args.Length > 0 ? args[0] : "first-chance";
        var rest = args.Length > 1 ? args[1..] : Array.Empty<string>();
        Console.Out.WriteLine($"PID {Environment.ProcessId} RUNTIME {Environment.Version}");
        Console.Out.Flush();
        switch (scenario)
        {
            case "first-chance": FirstChance(); break;
            case "invalid-op": Guard(ThrowInvalidOperation); break;
            case "custom": Guard(ThrowCustom); break;
            case "inner": Guard(ThrowWithInner); break;
            case "rethrow": RethrowScenario(); break;
            case "nullref": Guard(NullDereference); break;
            case "crash": Crash(); break;
            case "threads": Threads(rest.Length > 0 ? int.Parse(rest[0]) : 4); break;
            case "storm": Storm(rest.Length > 0 ? int.Parse(rest[0]) : 100, rest.Length > 1 ? double.Parse(rest[1]) : 5.0); break;
            case "repeat": Repeat(rest.Length > 0 ? int.Parse(rest[0]) : 1000); break;
            case "wait": return Wait();
            case "quiet": Quiet(rest.Length > 0 ? double.Parse(rest[0]) : 30.0); break;
            default:
                Console.Error.WriteLine($"unknown scenario '{scenario}'; one of: first-chance invalid-op custom inner rethrow nullref crash threads storm repeat wait quiet");
                return 2;
        }
        Console.Out.WriteLine($"DONE {_count}");
        Console.Out.Flush();
        return 0;
    }

    /// <summary>The four handled kinds in a fixed order: 1 IOE, 2 custom, 3 outer-with-inner (after its inner), rethrow.</summary>
    static void FirstChance()
    {
        Guard(ThrowInvalidOperation);
        Guard(ThrowCustom);
        Guard(ThrowWithInner);
        RethrowScenario();
        Guard(NullDereference);
    }

    static void Guard(Action a)
    {
        try { a(); }
        catch (Exception e) { Console.Out.WriteLine($"CAUGHT {e.GetType().FullName}"); Console.Out.Flush(); }
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    public static void ThrowInvalidOperation()
    {
        Announce("System.InvalidOperationException", "fixed message");
        throw new InvalidOperationException("The order queue timeout expired");
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    public static void ThrowCustom()
    {
        Announce("ThrowingApp.OrderRejectedException", "derives from ArgumentException");
        throw new OrderRejectedException("Order 42 was rejected: card declined", "order");
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    public static void ThrowWithInner()
    {
        try
        {
            Announce("System.FormatException", "the inner one");
            throw new FormatException("Bad amount '12,5x'");
        }
        catch (FormatException inner)
        {
            Announce("System.ApplicationException", "wraps the FormatException");
            throw new ApplicationException("Payment failed", inner);
        }
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    public static void RethrowScenario()
    {
        try
        {
            try
            {
                Announce("System.TimeoutException", "thrown, then rethrown");
                throw new TimeoutException("Backend did not answer");
            }
            catch (TimeoutException)
            {
                Announce("System.TimeoutException", "rethrow of the same object");
                throw;
            }
        }
        catch (TimeoutException e) { Console.Out.WriteLine($"CAUGHT {e.GetType().FullName}"); Console.Out.Flush(); }
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    public static void NullDereference()
    {
        Announce("System.NullReferenceException", "null dereference");
        string? s = Environment.GetEnvironmentVariable("PYDBGAUTO_SURELY_UNSET_VARIABLE");
        Console.Out.WriteLine(s!.Length);
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    static void Crash()
    {
        Announce("System.InvalidOperationException", "unhandled: the process dies");
        throw new InvalidOperationException("Unhandled: the service is going down");
    }

    static void Threads(int n)
    {
        var threads = new List<Thread>();
        using var start = new ManualResetEventSlim(false);
        for (int i = 0; i < n; i++)
        {
            var t = new Thread(() => { start.Wait(); Guard(ThrowInvalidOperation); }) { Name = $"worker-{i}" };
            t.Start();
            threads.Add(t);
        }
        start.Set();
        foreach (var t in threads) t.Join();
    }

    /// <summary>Throws `perSecond` handled exceptions a second for `seconds`; prints how many it managed.</summary>
    static void Storm(int perSecond, double seconds)
    {
        var sw = Stopwatch.StartNew();
        long thrown = 0;
        while (sw.Elapsed.TotalSeconds < seconds)
        {
            long due = (long)(sw.Elapsed.TotalSeconds * perSecond);
            while (thrown < due && sw.Elapsed.TotalSeconds < seconds)
            {
                try { throw new KeyNotFoundException("storm"); } catch (KeyNotFoundException) { }
                thrown++;
            }
            Thread.Sleep(1);
        }
        Console.Out.WriteLine($"STORM thrown={thrown} seconds={sw.Elapsed.TotalSeconds:F3} rate={thrown / sw.Elapsed.TotalSeconds:F1}");
    }

    /// <summary>Throws n numbered InvalidOperationExceptions, so hot code gets rewritten by tiered compilation.</summary>
    static void Repeat(int n)
    {
        for (int i = 0; i < n; i++) Guard(ThrowInvalidOperation);
    }

    /// <summary>For attach tests: READY, then one scenario per line of stdin; "exit" or EOF ends.</summary>
    static int Wait()
    {
        Console.Out.WriteLine($"READY {Environment.ProcessId}");
        Console.Out.Flush();
        string? line;
        while ((line = Console.In.ReadLine()) != null)
        {
            line = line.Trim();
            if (line == "exit") break;
            if (line.Length == 0) continue;
            var parts = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
            if (parts[0] == "crash") Crash();
            else if (parts[0] == "repeat") Repeat(int.Parse(parts[1]));
            else if (parts[0] == "first-chance") FirstChance();
            else if (parts[0] == "invalid-op") Guard(ThrowInvalidOperation);
            else if (parts[0] == "custom") Guard(ThrowCustom);
            else if (parts[0] == "inner") Guard(ThrowWithInner);
            else if (parts[0] == "rethrow") RethrowScenario();
            else if (parts[0] == "nullref") Guard(NullDereference);
            else if (parts[0] == "threads") Threads(parts.Length > 1 ? int.Parse(parts[1]) : 4);
            Console.Out.WriteLine($"OK {line}");
            Console.Out.Flush();
        }
        Console.Out.WriteLine($"DONE {_count}");
        return 0;
    }

    /// <summary>Runs without throwing: a baseline target.</summary>
    static void Quiet(double seconds) => Thread.Sleep(TimeSpan.FromSeconds(seconds));
}
