// FaultApp: hardware faults that .NET turns into managed exceptions, for the .NET 8 fault tests
// (tests/integration/test_net8_faults_probe.py). Each argument is a scenario, `name*count` repeats it;
// every fault (and the one `thrown` exception) prints one numbered line first:
//     FAULT <n> <ExceptionType> tid=<os thread id> <what>
using System;
using System.Collections.Generic;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Threading;

public static unsafe class Program
{
    static int _count;
    static readonly object Gate = new();
    static int _zero;  // never assigned: the divisions fault at run time
    static string? _null;
    static int[]? _nullArray;

    [DllImport("libc", EntryPoint = "gettid")]
    static extern int Tid();

    static void Announce(string type, string what)
    {
        lock (Gate) { _count++; Console.Out.WriteLine($"FAULT {_count} {type} tid={Tid()} {what}"); Console.Out.Flush(); }
    }

    static void Guard(Action a)
    {
        try { a(); }
        catch (Exception e) { Console.Out.WriteLine($"CAUGHT {e.GetType().FullName}"); Console.Out.Flush(); }
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    public static void NullDereference() { Announce("System.NullReferenceException", "null dereference"); Console.Out.WriteLine(_null!.Length); }

    [MethodImpl(MethodImplOptions.NoInlining)]
    public static void NullArray() { Announce("System.NullReferenceException", "null array store"); _nullArray![3] = 1; }

    [MethodImpl(MethodImplOptions.NoInlining)]
    public static void DivideByZero() { Announce("System.DivideByZeroException", "integer division by zero"); Console.Out.WriteLine(100 / _zero); }

    [MethodImpl(MethodImplOptions.NoInlining)]
    public static void Overflow() { Announce("System.OverflowException", "int.MinValue / -1"); int m = int.MinValue; int d = -1 + _zero; Console.Out.WriteLine(m / d); }

    [MethodImpl(MethodImplOptions.NoInlining)]
    public static void AccessViolation() { Announce("System.AccessViolationException", "write to an unmapped address"); *(int*)0x7ff0_0000_1000 = 1; }

    [MethodImpl(MethodImplOptions.NoInlining)]
    public static void Thrown() { Announce("System.NullReferenceException", "thrown by code"); throw new NullReferenceException("thrown"); }

    [MethodImpl(MethodImplOptions.NoInlining)]
    public static void InCatch()
    {
        try { DivideByZero(); }
        catch (DivideByZeroException) { NullDereference(); }
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    public static void Filtered()
    {
        try { NullDereference(); }
        catch (Exception e) when (e.Message.Length > 0) { Console.Out.WriteLine("FILTERED"); }
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    public static void InFinally()
    {
        try { try { } finally { DivideByZero(); } } catch (DivideByZeroException) { }
    }

    static void Threads(int n)
    {
        var threads = new List<Thread>();
        using var start = new ManualResetEventSlim(false);
        for (int i = 0; i < n; i++)
        {
            var t = new Thread(() => { start.Wait(); Guard(NullDereference); }) { Name = $"worker-{i}" };
            t.Start(); threads.Add(t);
        }
        start.Set();
        foreach (var t in threads) t.Join();
    }

    public static int Main(string[] args)
    {
        Console.Out.WriteLine($"PID {Environment.ProcessId} RUNTIME {Environment.Version}");
        Console.Out.Flush();
        foreach (var scenario in args)
        {
            var parts = scenario.Split('*');
            int times = parts.Length > 1 ? int.Parse(parts[1]) : 1;
            for (int i = 0; i < times; i++)
            {
                switch (parts[0])
                {
                    case "nullref": Guard(NullDereference); break;
                    case "nullarray": Guard(NullArray); break;
                    case "divzero": Guard(DivideByZero); break;
                    case "overflow": Guard(Overflow); break;
                    case "av": Guard(AccessViolation); break;
                    case "thrown": Guard(Thrown); break;
                    case "incatch": Guard(InCatch); break;
                    case "filter": Guard(Filtered); break;
                    case "finally": Guard(InFinally); break;
                    case "threads": Threads(times); i = times; break;
                    case "sleep": Thread.Sleep(times); i = times; break;
                    case "crash-nullref": NullDereference(); break;
                    case "crash-divzero": DivideByZero(); break;
                    default: Console.Error.WriteLine($"unknown scenario {parts[0]}"); return 2;
                }
            }
        }
        Console.Out.WriteLine($"DONE {_count}");
        Console.Out.Flush();
        return 0;
    }
}
