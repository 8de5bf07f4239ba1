namespace MoCo.Model.Evaluation;

/// <summary>
/// The linear probe's sanity check failed (main_lincls.py's sanity_check): a tensor of the frozen backbone,
/// a weight or a BatchNorm running statistic, is not bit-identical after training to what it was before.
/// </summary>
public sealed class BackboneChangedException : Exception
{
    /// <summary>Creates the exception naming the tensors that changed.</summary>
    public BackboneChangedException(IReadOnlyList<string> changedTensors)
        : base($"Linear probe sanity check failed: the frozen backbone changed during training ({changedTensors.Count} tensor(s): "
            + string.Join(", ", changedTensors.Take(8)) + (changedTensors.Count > 8 ? ", ..." : "") + ").")
    {
        ChangedTensors = changedTensors;
    }

    /// <summary>The state-dict names of the tensors that differ.</summary>
    public IReadOnlyList<string> ChangedTensors { get; }
}
