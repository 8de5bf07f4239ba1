using System.Diagnostics;

namespace MoCo.Bench;

/// <summary>
/// W children of this executable, one per rank, talked to line by line: the parent reads what each prints on
/// standard output and writes to its standard input (the rendezvous of <c>allreduce-rank</c>). Standard error is
/// kept (its last lines) to explain a child that fails. Disposing kills children that are still running.
/// </summary>
internal sealed class RankGroup : IDisposable
{
    private const int TailLines = 15;

    private readonly Process[] _processes;
    private readonly Queue<string>[] _errors;

    private RankGroup(Process[] processes, Queue<string>[] errors)
    {
        _processes = processes;
        _errors = errors;
    }

    /// <summary>Starts one child per rank with the arguments <paramref name="arguments"/>(rank).</summary>
    public static RankGroup Start(int world, Func<int, IEnumerable<string>> arguments)
    {
        var processes = new Process[world];
        var errors = new Queue<string>[world];
        for (int r = 0; r < world; r++)
        {
            var info = new ProcessStartInfo
            {
                FileName = Environment.ProcessPath ?? throw new InvalidOperationException("the path of this executable is unknown"),
                RedirectStandardInput = true,
                RedirectStandardOutput = true,
                RedirectStandardError = true,
                UseShellExecute = false,
            };
            if (Path.GetFileNameWithoutExtension(info.FileName) == "dotnet")
            {
                info.ArgumentList.Add(typeof(RankGroup).Assembly.Location);
            }
            foreach (var argument in arguments(r))
            {
                info.ArgumentList.Add(argument);
            }
            var tail = errors[r] = new Queue<string>();
            var process = new Process { StartInfo = info };
            process.ErrorDataReceived += (_, e) =>
            {
                if (e.Data is null)
                {
                    return;
                }
                lock (tail)
                {
                    tail.Enqueue(e.Data);
                    if (tail.Count > TailLines)
                    {
                        tail.Dequeue();
                    }
                }
            };
            process.Start();
            process.BeginErrorReadLine();
            processes[r] = process;
        }
        return new RankGroup(processes, errors);
    }

    /// <summary>The next line rank <paramref name="rank"/> prints.</summary>
    /// <exception cref="InvalidOperationException">The child ended instead; the message holds its exit code and last error lines.</exception>
    public string ReadLine(int rank)
    {
        var line = _processes[rank].StandardOutput.ReadLine();
        if (line is null)
        {
            _processes[rank].WaitForExit();
            throw new InvalidOperationException($"rank {rank} ended with exit code {_processes[rank].ExitCode}:\n{ErrorTail(rank)}");
        }
        return line;
    }

    /// <summary>Writes <paramref name="line"/> to rank <paramref name="rank"/>'s standard input.</summary>
    public void WriteLine(int rank, string line)
    {
        _processes[rank].StandardInput.WriteLine(line);
        _processes[rank].StandardInput.Flush();
    }

    /// <summary>Waits for every child to end and throws when one failed.</summary>
    /// <exception cref="InvalidOperationException">A child ended with a non-zero exit code.</exception>
    public void WaitForAll()
    {
        for (int r = 0; r < _processes.Length; r++)
        {
            _processes[r].WaitForExit();
            if (_processes[r].ExitCode != 0)
            {
                throw new InvalidOperationException($"rank {r} ended with exit code {_processes[r].ExitCode}:\n{ErrorTail(r)}");
            }
        }
    }

    public void Dispose()
    {
        foreach (var process in _processes)
        {
            try
            {
                if (!process.HasExited)
                {
                    process.Kill();
                    process.WaitForExit();
                }
            }
            catch (InvalidOperationException)
            {
                // never started or already reaped
            }
            process.Dispose();
        }
    }

    private string ErrorTail(int rank)
    {
        lock (_errors[rank])
        {
            return string.Join(Environment.NewLine, _errors[rank]);
        }
    }
}
