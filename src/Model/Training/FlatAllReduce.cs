using MoCo.Model.Collectives;
using static TorchSharp.torch;

namespace MoCo.Model.Training;

/// <summary>
/// Sums several tensors over the ranks through one collective. When they are the pieces of one contiguous range of
/// one buffer (a gradient bucket of <see cref="FlatParameters"/>), that range is all-reduced where it lies; otherwise
/// through one flat copy, one all-reduce and copies back.
/// </summary>
internal static class FlatAllReduce
{
    /// <summary>
    /// Sums every tensor of <paramref name="tensors"/> over the ranks, in place, in one <see cref="ICollective.AllReduceSum"/>:
    /// of the buffer range they tile when they tile one, else of their concatenation (the same order on every rank).
    /// </summary>
    public static void SumInPlace(ICollective collective, IReadOnlyList<Tensor> tensors)
    {
        if (tensors.Count == 0)
        {
            return; // the same on every rank: what is summed follows from the model's structure
        }

        if (SpanOf(tensors) is { } span)
        {
            using (span)
            {
                collective.AllReduceSum(span);
            }

            return;
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

    /// <summary>
    /// A 1-D view of the range of one storage that <paramref name="tensors"/> tile exactly (contiguous pieces of one
    /// dtype, in any order, back to back without gap or overlap); null when they do not. Each element sums the same
    /// values whether it travels in this range or in a concatenation; only its place in the collective's chunks may
    /// differ (which with three or more ranks may change the order of the additions, not what is added).
    /// </summary>
    internal static Tensor? SpanOf(IReadOnlyList<Tensor> tensors)
    {
        var first = tensors[0];
        IntPtr storage = StorageAddress.THSStorage_data_ptr(first.Handle);
        var pieces = new List<(long Offset, long Count)>(tensors.Count);
        foreach (var t in tensors)
        {
            if (t.dtype != first.dtype || t.device_type != first.device_type || t.device_index != first.device_index || !t.is_contiguous() || t.numel() == 0
                || StorageAddress.THSStorage_data_ptr(t.Handle) != storage)
            {
                return null;
            }

            pieces.Add((t.storage_offset(), t.numel()));
        }

        pieces.Sort();
        for (int i = 1; i < pieces.Count; i++)
        {
            if (pieces[i].Offset != pieces[i - 1].Offset + pieces[i - 1].Count)
            {
                return null;
            }
        }

        long total = pieces[^1].Offset + pieces[^1].Count - pieces[0].Offset;
        return first.as_strided([total], [1], pieces[0].Offset);
    }
}
