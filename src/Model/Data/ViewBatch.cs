using MoCo.Model.Training;
using static TorchSharp.torch;

namespace MoCo.Model.Data;

/// <summary>Builds an n x 3 x S x S float batch of views, in parallel, written straight into the tensor's memory.</summary>
public static class ViewBatch
{
    /// <summary>
    /// Row i is <paramref name="transform"/> applied to image <paramref name="indexOf"/>(i) with the random stream
    /// <paramref name="rngOf"/>(i, image index). The caller owns the returned tensor.
    /// </summary>
    public static Tensor Build(IImageDataset dataset, IViewTransform transform, int count, Func<int, int> indexOf, Func<int, int, CounterRng> rngOf, int threads)
    {
        int size = transform.OutputSize;
        int per = 3 * size * size;
        var batch = empty(count, 3, size, size);
        unsafe
        {
            fixed (byte* p = batch.bytes)
            {
                var basePtr = (IntPtr)p;
                Parallel.For(0, count, new ParallelOptions { MaxDegreeOfParallelism = Math.Max(1, threads) }, i =>
                {
                    int index = indexOf(i);
                    var rng = rngOf(i, index);
                    transform.Apply(dataset.Image(index), ref rng, new Span<float>((float*)basePtr + (long)i * per, per));
                });
            }
        }
        return batch;
    }
}
