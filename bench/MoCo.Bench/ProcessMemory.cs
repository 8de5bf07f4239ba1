using System.Globalization;

namespace MoCo.Bench;

/// <summary>This process's resident memory as Linux reports it in /proc/self/status.</summary>
internal static class ProcessMemory
{
    /// <summary>VmHWM, the peak resident set size since the process started, in MiB; NaN where /proc is unavailable.</summary>
    public static double PeakResidentMiB() => ReadKiB("VmHWM:") / 1024.0;

    /// <summary>VmRSS, the current resident set size, in MiB; NaN where /proc is unavailable.</summary>
    public static double ResidentMiB() => ReadKiB("VmRSS:") / 1024.0;

    private static double ReadKiB(string key)
    {
        const string status = "/proc/self/status";
        if (!File.Exists(status))
        {
            return double.NaN;
        }
        foreach (var line in File.ReadLines(status))
        {
            if (line.StartsWith(key, StringComparison.Ordinal))
            {
                // "VmHWM:	  123456 kB"
                var parts = line[key.Length..].Split((char[])[' ', '\t'], StringSplitOptions.RemoveEmptyEntries);
                return double.Parse(parts[0], CultureInfo.InvariantCulture);
            }
        }
        return double.NaN;
    }
}
