// CrashApp: pydbgauto's target for the ways a .NET process dies (issue 15).
//
//     CrashApp stackoverflow [thread] Ping -> Pong -> Ping ... on the main thread (or a new thread, 1.5 MB
//                                     of stack) until the stack is gone
//     CrashApp wait                   print READY <pid>, read one line from stdin, run it as the arguments
//                                     (for a debugger that attaches first)
//     CrashApp failfast <message>     Environment.FailFast(message) from FailFastScenario.Die
//     CrashApp background-crash       an InvalidOperationException nobody catches, on a background thread
//     CrashApp nullref-unhandled      a null dereference (SIGSEGV -> NullReferenceException), not caught
//     CrashApp divzero-unhandled      an integer division by zero (SIGFPE -> DivideByZeroException), not caught
//     CrashApp deep-throw <depth> [unhandled]
//                                     recurse <depth> frames deep, throw an InvalidOperationException there;
//                                     caught at the bottom (then exit 0), or with "unhandled" not caught
//     CrashApp many-threads <n>       start <n> threads that wait, then an unhandled InvalidOperationException
//
// Before it crashes it prints, flushed:
//     CRASH <scenario> pid=<pid> tid=<os thread id> at=<unix seconds, 6 decimals>
// (the moment the fatal path starts: for a stack overflow, the first call of the recursion).
using System;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Threading;

namespace CrashApp;

public static class Program
{
    [DllImport("libc", EntryPoint = "gettid")]
    static extern int GetTid();

    internal static void Announce(string scenario)
    {
        var at = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() / 1000.0;
        Console.Out.WriteLine($"CRASH {scenario} pid={Environment.ProcessId} tid={GetTid()} at={at:F6}");
        Console.Out.Flush();
    }

    public static int Main(string[] args)
    {
        Console.Out.WriteLine($"PID {Environment.ProcessId} RUNTIME {Environment.Version}");
        Console.Out.Flush();
        if (args.Length > 0 && args[0] == "wait")
        {
            Console.Out.WriteLine($"READY {Environment.ProcessId}");
            Console.Out.Flush();
            args = (Console.In.ReadLine() ?? "").Split(' ', StringSplitOptions.RemoveEmptyEntries);
        }
        return Run(args);
    }

    static int Run(string[] args)
    {
        var scenario = args.Length > 0 ? args[0] : "";
        switch (scenario)
        {
            case "stackoverflow" when args.Length > 1 && args[1] == "thread":
                var overflowing = new Thread(StackOverflowScenario.Start) { Name = "CrashApp overflow" };
                overflowing.Start();
                overflowing.Join();
                break;
            case "stackoverflow": StackOverflowScenario.Start(); break;
            case "failfast": FailFastScenario.Die(args.Length > 1 ? args[1] : "CrashApp fail-fast"); break;
            case "background-crash": BackgroundScenario.Start(); break;
            case "nullref-unhandled": FaultScenario.NullDereference(null); break;
            case "divzero-unhandled": FaultScenario.Divide(args.Length > 1 ? int.Parse(args[1]) : 0); break;
            case "deep-throw":
                return DeepScenario.Start(int.Parse(args[1]), args.Length > 2 && args[2] == "unhandled");
            case "many-threads": ThreadsScenario.Start(int.Parse(args[1])); break;
            default:
                Console.Error.WriteLine(
                    "usage: CrashApp [wait] stackoverflow [thread] | failfast <message> | background-crash | " +
                    "nullref-unhandled | divzero-unhandled | deep-throw <depth> [unhandled] | many-threads <n>");
                return 2;
        }
        Console.Out.WriteLine("NOT-CRASHED");
        return 1;
    }
}

public sealed class Payload
{
    public int Value;
}

public static class StackOverflowScenario
{
    public static void Start()
    {
        Program.Announce("stackoverflow");
        Ping(0);
    }

    // A cycle of two methods, so a reader has to name a cycle, not one repeating frame.
    [MethodImpl(MethodImplOptions.NoInlining)]
    public static int Ping(int depth) => Pong(depth + 1) + 1;

    [MethodImpl(MethodImplOptions.NoInlining)]
    public static int Pong(int depth) => Ping(depth + 1) + 1;
}

public static class FailFastScenario
{
    [MethodImpl(MethodImplOptions.NoInlining)]
    public static void Die(string message)
    {
        Program.Announce("failfast");
        Environment.FailFast(message);
    }
}

public static class BackgroundScenario
{
    public static void Start()
    {
        var worker = new Thread(Worker.Run) { IsBackground = true, Name = "CrashApp worker" };
        worker.Start();
        worker.Join();
    }
}

public static class Worker
{
    [MethodImpl(MethodImplOptions.NoInlining)]
    public static void Run()
    {
        Program.Announce("background-crash");
        throw new InvalidOperationException("the background worker lost its queue");
    }
}

public static class FaultScenario
{
    [MethodImpl(MethodImplOptions.NoInlining)]
    public static int NullDereference(Payload? payload)
    {
        Program.Announce("nullref-unhandled");
        return payload!.Value;
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    public static int Divide(int divisor)
    {
        Program.Announce("divzero-unhandled");
        return 100 / divisor;
    }
}

public static class DeepScenario
{
    public static int Start(int depth, bool unhandled)
    {
        if (unhandled)
        {
            Descend(depth);
        }
        try
        {
            Descend(depth);
        }
        catch (InvalidOperationException e)
        {
            Console.Out.WriteLine($"CAUGHT {e.GetType()} {e.StackTrace?.Split('\n').Length} frames");
        }
        return 0;
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    public static int Descend(int remaining)
    {
        if (remaining <= 0)
        {
            return ThrowAtTheBottom();
        }
        return Descend(remaining - 1) + 1;
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    public static int ThrowAtTheBottom()
    {
        Program.Announce("deep-throw");
        throw new InvalidOperationException("thrown at the bottom of a deep stack");
    }
}

public static class ThreadsScenario
{
    public static void Start(int count)
    {
        var gate = new ManualResetEventSlim(false);
        var started = new CountdownEvent(count);
        for (var i = 0; i < count; i++)
        {
            var t = new Thread(() => { started.Signal(); gate.Wait(); }, 64 * 1024) { IsBackground = true };
            t.Start();
        }
        started.Wait();
        Crash(count);
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    public static void Crash(int count)
    {
        Program.Announce("many-threads");
        throw new InvalidOperationException($"crashed with {count} threads waiting");
    }
}
