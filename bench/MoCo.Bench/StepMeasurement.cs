using System.Text.Json;

namespace MoCo.Bench;

/// <summary>
/// What one <c>step-one</c> child measured, sent to the parent as one JSON line on standard output.
/// </summary>
/// <param name="What">The configuration's letter, a to e.</param>
/// <param name="Batch">Images per step; each image counts once although MoCo sees two views of it.</param>
/// <param name="Steps">Timed steps.</param>
/// <param name="Warmup">Untimed steps before them.</param>
/// <param name="MedianStepSeconds">Median wall time of one timed step.</param>
/// <param name="MinStepSeconds">Fastest timed step.</param>
/// <param name="MaxStepSeconds">Slowest timed step.</param>
/// <param name="ImagesPerSecond">Batch divided by the median step time.</param>
/// <param name="PeakResidentMiB">VmHWM of the child at the end: its peak resident memory.</param>
/// <param name="TorchThreads">torch.get_num_threads() in the child.</param>
/// <param name="Cores">Environment.ProcessorCount in the child.</param>
/// <param name="Note">What the child reports besides (the data set it opened, the last loss).</param>
internal sealed record StepMeasurement(
    string What,
    int Batch,
    int Steps,
    int Warmup,
    double MedianStepSeconds,
    double MinStepSeconds,
    double MaxStepSeconds,
    double ImagesPerSecond,
    double PeakResidentMiB,
    int TorchThreads,
    int Cores,
    string Note)
{
    private static readonly JsonSerializerOptions JsonOptions = new() { PropertyNamingPolicy = JsonNamingPolicy.CamelCase };

    /// <summary>The one-line JSON form.</summary>
    public string ToJson() => JsonSerializer.Serialize(this, JsonOptions);

    /// <summary>Reads the JSON form; null when <paramref name="line"/> is not one.</summary>
    public static StepMeasurement? TryParse(string line)
    {
        if (!line.StartsWith('{'))
        {
            return null;
        }
        try
        {
            return JsonSerializer.Deserialize<StepMeasurement>(line, JsonOptions);
        }
        catch (JsonException)
        {
            return null;
        }
    }
}
