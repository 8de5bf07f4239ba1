using MoCo.Model.Collectives;
using static TorchSharp.torch;

namespace MoCo.Model.Training;

/// <summary>Sums several tensors over the ranks through one collective: one flat copy, one all-reduce, copies back.</summary>
internal static class FlatAllReduce
{
    /// <summary>
    /// Sums every tensor of <paramref name="tensors"/> over the ranks, in place, in one <see cref="ICollective.AllReduceSum"/>
    /// of their concatenation (the same order on every rank).
    /// </summary>
    public static void SumInPlace(ICollective collective, IReadOnlyList<Tensor> tensors)
    {
        if (tensors.Count == 0)
        {
            return; // the same on every rank: what is summed follows from the model's structure
        }

        using var scope = NewDisposeScope();
        var flat = cat(tensors.Select(t => t.flatten()).ToList(), 0);
        collective.AllReduceSum(flat);
        long offset = 0;
        using (no_grad())
        {
            foreach (var t in tensors)
            {
                t.copy_(flat.narrow(0, offset, t.numel()).view_as(t));
                offset += t.numel();
            }
        }
    }
}
