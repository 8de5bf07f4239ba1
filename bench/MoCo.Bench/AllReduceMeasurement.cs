using System.Text.Json;
using System.Text.Json.Serialization;

namespace MoCo.Bench;

/// <summary>
/// One timed all-reduce size, as a JSON line from rank 0 of a ring child group or of bench/gloo_allreduce.py:
/// the slowest rank's mean time per call.
/// </summary>
/// <param name="Procs">Processes in the group.</param>
/// <param name="Bytes">The tensor's size in bytes (float32).</param>
/// <param name="Iters">Timed calls.</param>
/// <param name="Seconds">Mean seconds per call, the maximum over ranks.</param>
/// <param name="CpuSeconds">
/// CPU time (user + system, all threads) per call, summed over the ranks: what a call costs the machine, which a
/// busy shared machine disturbs less than the wall time.
/// </param>
/// <param name="Chunk">The ring's segment size in bytes (0 for Gloo).</param>
/// <param name="Protection">The ring's data-plane protection (<c>aes-gcm</c> or <c>none</c>); empty for Gloo.</param>
internal sealed record AllReduceMeasurement(
    [property: JsonPropertyName("procs")] int Procs,
    [property: JsonPropertyName("bytes")] long Bytes,
    [property: JsonPropertyName("iters")] int Iters,
    [property: JsonPropertyName("seconds")] double Seconds,
    [property: JsonPropertyName("cpu_seconds")] double CpuSeconds,
    [property: JsonPropertyName("chunk")] int Chunk = 0,
    [property: JsonPropertyName("protection")] string Protection = "")
{
    /// <summary>Algorithm bandwidth in GB/s (10^9 bytes), as nccl-tests define it: bytes / time.</summary>
    [JsonIgnore]
    public double AlgBandwidth => Bytes / Seconds / 1e9;

    /// <summary>Bus bandwidth in GB/s, as nccl-tests define it for all-reduce: algbw · 2(n − 1)/n.</summary>
    [JsonIgnore]
    public double BusBandwidth => AlgBandwidth * 2 * (Procs - 1) / Procs;

    /// <summary>The one-line JSON form.</summary>
    public string ToJson() => JsonSerializer.Serialize(this);

    /// <summary>Reads the JSON form; null when <paramref name="line"/> is not one.</summary>
    public static AllReduceMeasurement? TryParse(string line)
    {
        if (!line.StartsWith('{'))
        {
            return null;
        }
        try
        {
            return JsonSerializer.Deserialize<AllReduceMeasurement>(line);
        }
        catch (JsonException)
        {
            return null;
        }
    }
}
