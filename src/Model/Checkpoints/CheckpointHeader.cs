namespace MoCo.Model.Checkpoints;

/// <summary>
/// What a checkpoint says about itself, stored as UTF-8 JSON at the front of the file
/// (the tensor index is stored next to it, see <see cref="CheckpointTensorInfo"/>).
/// </summary>
/// <param name="RunId">The run the checkpoint belongs to; a reader refuses a checkpoint of another run.</param>
/// <param name="Epoch">The epoch of the data cursor (the next step to run is in this epoch).</param>
/// <param name="Step">The global step of the data cursor (steps completed so far).</param>
/// <param name="CreatedUtc">When the checkpoint was taken.</param>
/// <param name="ConfigJson">The run's configuration, as JSON text.</param>
/// <param name="Extra">Small facts that are not tensors: data cursor details, RNG seed, metrics, and so on.</param>
public sealed record CheckpointHeader(
    string RunId,
    int Epoch,
    long Step,
    DateTimeOffset CreatedUtc,
    string ConfigJson,
    Dictionary<string, string> Extra);
