// FilterApp: the cases an in-target type filter must get right (tests/integration/test_fast_filter.py).
// `FilterApp <command> [n]` runs one command and exits; `FilterApp wait` prints READY, then runs one command
// per stdin line and answers "OK <command>" ("exit" or end of input ends). Every throw statement
// announces itself first:
//     THROW <n> <type> <what>
// so a test can compare first-chance events with throws.
using System;
using System.Collections.Generic;
using System.Runtime.CompilerServices;
using System.Threading;

namespace FilterApp;

public class MatchedException : InvalidOperationException
{
    public MatchedException(string m) : base(m) { }
}

public class GenericFailure<T> : Exception
{
    public GenericFailure(string m) : base(m) { }
}

public class IntFailure : GenericFailure<int>
{
    public IntFailure(string m) : base(m) { }
}

public static class Program
{
    static int _count;
    static object? _sink;

    static void Announce(string type, string what)
    {
        int n = Interlocked.Increment(ref _count);
        Console.Out.WriteLine($"THROW {n} {type} {what}");
        Console.Out.Flush();
    }

    public static int Main(string[] args)
    {
        Console.Out.WriteLine($"READY {Environment.ProcessId} {Environment.Version}");
        Console.Out.Flush();
        if (args.Length > 0 && args[0] != "wait") { Run(string.Join(' ', args)); Console.Out.WriteLine("DONE"); return 0; }
        string? line;
        while ((line = Console.In.ReadLine()) != null)
        {
            line = line.Trim();
            if (line == "exit") break;
            if (line.Length == 0) continue;
            Run(line);
            Console.Out.WriteLine($"OK {line}");
            Console.Out.Flush();
        }
        return 0;
    }

    static void Run(string line)
    {
        var p = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
        int n = p.Length > 1 ? int.Parse(p[1]) : 1;
        switch (p[0])
        {
            case "storm": Storm(n); break;          // n KeyNotFoundException, not announced (speed)
            case "timed": Timed(double.Parse(p[1])); break;
            case "match": for (int i = 0; i < n; i++) Guard(() => { Announce("System.InvalidOperationException", "match"); throw new InvalidOperationException("match"); }); break;
            case "derived": Guard(() => { Announce("FilterApp.MatchedException", "derived"); throw new MatchedException("derived"); }); break;
            case "created": _sink = new InvalidOperationException("created, never thrown"); break;
            case "cross": Cross(); break;
            case "twice": Twice(); break;
            case "rethrow": Rethrow(); break;
            case "index": Guard(() => { Announce("System.IndexOutOfRangeException", "bounds check"); IndexOut(new int[1], 5); }); break;
            case "cast": Guard(() => { Announce("System.InvalidCastException", "cast"); Cast("x"); }); break;
            case "nullref": Guard(() => { Announce("System.NullReferenceException", "fault"); NullDeref(null); }); break;
            case "other": Guard(() => { Announce("System.FormatException", "other"); throw new FormatException("other"); }); break;
            case "mixed": Mixed(n); break;
            case "generic": Generic(); break;
            case "spawn": Spawn(n); break;
            default: Console.Out.WriteLine($"UNKNOWN {p[0]}"); break;
        }
    }

    static void Guard(Action a)
    {
        try { a(); } catch (Exception) { }
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    static int IndexOut(int[] a, int i) => a[i];

    [MethodImpl(MethodImplOptions.NoInlining)]
    static int Cast(object o) => ((IComparable<int>)o).CompareTo(1);

    [MethodImpl(MethodImplOptions.NoInlining)]
    static int NullDeref(string? s) => s!.Length;

    static void Storm(int n)
    {
        for (int i = 0; i < n; i++)
        {
            try { throw new KeyNotFoundException("storm"); } catch (KeyNotFoundException) { }
        }
    }

    static void Timed(double seconds)
    {
        var sw = System.Diagnostics.Stopwatch.StartNew();
        long thrown = 0;
        while (sw.Elapsed.TotalSeconds < seconds)
        {
            for (int i = 0; i < 1000; i++)
            {
                try { throw new KeyNotFoundException("storm"); } catch (KeyNotFoundException) { }
            }
            thrown += 1000;
        }
        Console.Out.WriteLine($"TIMED thrown={thrown} seconds={sw.Elapsed.TotalSeconds:F3} rate={thrown / sw.Elapsed.TotalSeconds:F1}");
    }

    static void Cross()
    {
        Exception? made = null;
        var a = new Thread(() => made = new InvalidOperationException("made on one thread"));
        a.Start(); a.Join();
        var b = new Thread(() => Guard(() => { Announce("System.InvalidOperationException", "thrown on another thread"); throw made!; }));
        b.Start(); b.Join();
    }

    static void Twice()
    {
        var e = new InvalidOperationException("thrown twice");
        for (int i = 0; i < 2; i++) Guard(() => { Announce("System.InvalidOperationException", "same object"); throw e; });
    }

    static void Rethrow()
    {
        Guard(() =>
        {
            try { Announce("System.InvalidOperationException", "thrown"); throw new InvalidOperationException("rethrown"); }
            catch (InvalidOperationException) { Announce("System.InvalidOperationException", "rethrow"); throw; }
        });
    }

    // n child processes started and waited for (.NET starts them with vfork + exec), a throw after each.
    static void Spawn(int n)
    {
        for (int i = 0; i < n; i++)
        {
            using (var child = System.Diagnostics.Process.Start("/bin/true")) { child!.WaitForExit(); }
            Guard(() => { Announce("System.FormatException", "after a child"); throw new FormatException("after a child"); });
        }
        Console.Out.WriteLine($"SPAWNED {n}");
    }

    // Two instantiations of one generic type, a type derived from one of them, and a non-generic throw.
    static void Generic()
    {
        Guard(() => { Announce("FilterApp.GenericFailure`1[[System.Int32, System.Private.CoreLib]]", "int"); throw new GenericFailure<int>("int"); });
        Guard(() => { Announce("FilterApp.GenericFailure`1[[System.String, System.Private.CoreLib]]", "string"); throw new GenericFailure<string>("string"); });
        Guard(() => { Announce("FilterApp.IntFailure", "derived"); throw new IntFailure("derived"); });
        Guard(() => { Announce("System.FormatException", "other"); throw new FormatException("other"); });
    }

    static void Mixed(int n)
    {
        for (int i = 0; i < n; i++)
        {
            Guard(() => { Announce("System.FormatException", "mixed"); throw new FormatException("mixed"); });
            Guard(() => { Announce("System.InvalidOperationException", "mixed"); throw new InvalidOperationException("mixed"); });
            Guard(() => { Announce("System.IndexOutOfRangeException", "mixed"); IndexOut(new int[1], 3); });
            Guard(() => { Announce("FilterApp.MatchedException", "mixed"); throw new MatchedException("mixed"); });
        }
    }
}
